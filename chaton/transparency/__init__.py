"""Transparency: what a CHATONS member publishes about itself.

The collective's profile (the ``organization.*`` of ChatonsInfos), the
ChatonsInfos files served at ``/.well-known/chatonsinfos/`` and the validator
they pass (:mod:`chaton.transparency.validator`), the list of software installed
on the servers, the register of requests received from authorities, and the
public page ``/transparency/`` that gathers them.
"""
