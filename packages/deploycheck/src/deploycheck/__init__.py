"""Static checks of the deployment, for a project that cannot run Docker or FreeSWITCH in CI.

Each check takes the repository root and returns a list of findings (empty: all good); every
finding names the file and what is wrong in words an operator can act on.
"""

from deploycheck.compose import check_compose
from deploycheck.dockerfiles import check_dockerfiles
from deploycheck.freeswitch import check_freeswitch

__all__ = ["check_compose", "check_dockerfiles", "check_freeswitch"]
