"""A local stand-in for CloudFormation: deploy, update and destroy templates that use Custom::AppStreamImage."""
