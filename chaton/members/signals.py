"""What the members app announces, for the apps above it to follow.

The directory listens (``DirectoryConfig.ready``): an organization's entry, the
accounts it owns and the groups of kind "members" are rewritten after the commit.
The members app sends them inside its actions' transactions and never imports
the directory.
"""

from django.dispatch import Signal

#: An organization was created or changed. Keyword: ``organization``. Sender: Organization.
organization_changed = Signal()

#: A membership started or ended: who is a member changes. Sender: Membership.
memberships_changed = Signal()
