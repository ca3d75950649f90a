"""Custom::AppStreamImage provider: the Lambda asset (no imports from stacks/ or appstream_image_local/).

Two packages and one module between them: cloudformation/ (the request, the answer and its owner, the clock, the
scheduled runs) knows no AppStream; appstream/ (properties, the calls, the waits, Create/Update/Delete) knows no
CloudFormation wire format; step.py turns a request and its time into an outcome. A Create reads in this order:
handler.py -> cloudformation/request.py -> step.py -> appstream/creation.py -> appstream/states.py ->
appstream/images.py -> cloudformation/answer.py.
"""
