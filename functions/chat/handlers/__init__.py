"""Lambda entry points: one thin module per API Gateway route, the authorizer and the Cognito trigger."""
