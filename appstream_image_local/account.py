"""The offline cloud's one account, and its home region: the one its clients use unless told another."""

ACCOUNT = "123456789012"
REGION = "us-east-1"
