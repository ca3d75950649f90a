"""The AppStream side: properties, ownership, the AppStream calls, the waits, Create/Update/Delete.

It knows no CloudFormation wire format and imports nothing from provider.cloudformation: what it needs of
CloudFormation (claiming an image, stopping a schedule, asking about stacks) is one Protocol (caller.py).
"""
