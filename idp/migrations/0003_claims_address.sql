-- The `address` claim (OIDC Core §5.1.1, released with the `address` scope): a postal address,
-- kept as one formatted text.
ALTER TABLE users ADD COLUMN address TEXT;

-- Claims requested one by one with the `claims` request parameter (OIDC Core §5.5), as JSON
-- {"userinfo": [names], "id_token": [names]}: bound to the code, then to its token family (so
-- that refreshed tokens release the same claims).
ALTER TABLE auth_codes ADD COLUMN claims TEXT;
ALTER TABLE token_families ADD COLUMN claims TEXT;
