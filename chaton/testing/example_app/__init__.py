"""An app that plugs into Chaton from its own folder only, for the tests.

``chaton.testing.example_settings`` installs it with one line more in
``INSTALLED_APPS``; ``tests/cli/test_example_app.py`` then finds its page, its
API route, its navigation entry, its CLI group, its worker job and its demo
part. ``docs/how-to/add-an-app.md`` follows the same steps.
"""
