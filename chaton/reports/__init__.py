"""The semester activity report: drafts, builds (HTML, PDF, Markdown) and published archives."""
