"""Custom::AppStreamImage provider: the Lambda asset (no imports from stacks/ or local/)."""
