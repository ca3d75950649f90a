"""The CloudFormation side: the request, the one owner of the answer (its lock and timer), the outcomes, the
scheduling of later runs, the resumable state, the clock and every margin, and crhelper as the front door.

It knows no AppStream and imports nothing from provider.appstream (step.py joins the two sides). This package's
__init__ imports nothing: handler.py imports response.py before anything that could fail to load.
"""
