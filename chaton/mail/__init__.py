"""Mail identity: domains, their DNS records, DKIM keys rotated with overlap, retired keys."""
