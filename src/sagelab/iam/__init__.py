"""IAM and STS: the identities a server knows (users, groups, roles, their policies and keys), the temporary
sessions STS issues, and the authorizer that decides every call with the policy library in `security/`."""
