"""Custom::AppStreamImage provider: the Lambda asset (no imports from stacks/ or appstream_image_local/)."""
