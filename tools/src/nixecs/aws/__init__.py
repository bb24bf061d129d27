"""AWS operations with boto3: ami publish, deploy, roll, status, secret."""
