# goldpath example policy (Polar, Oso 0.27). Copy it and make it yours.
#
# HOW A REQUEST BECOMES A QUESTION
#   pdp.yaml maps each API request to an (action, resource) pair; the first rule that matches the
#   method and the path wins. The demo's pdp.yaml says:
#
#     GET|HEAD         /api/orders       -> action "list",   resource OrderList
#     GET|HEAD         /api/orders/:id   -> action "read",   resource Order   (id ":id")
#     POST             /api/orders       -> action "create", resource OrderList
#     PUT|PATCH|DELETE /api/orders/:id   -> action "write",  resource Order   (id ":id")
#     GET              /api/profiles/:id -> action "read",   resource Profile (id ":id")
#
#   goldpath then asks this policy  allow(user, action, resource)  and lets the request through only
#   when some allow rule below succeeds. Everything else is denied (403): no matching pdp.yaml rule,
#   no matching allow rule, or an error while evaluating (e.g. reading an attribute that does not
#   exist), which is logged.
#
# THE ACTOR: `User`, built from the session (the IdP's ID token and userinfo):
#   user.id      the `sub` claim (string)
#   user.idp     the idps.yaml key of the IdP the user logged in with (string)
#   user.email   the email claim when the IdP verified it (email_verified true), else nil: an
#                unverified address names nobody (user.claims.email still holds it)
#   user.roles   string list, from the claim named by idps.yaml `claims.roles`
#   user.groups  string list, from the claim named by idps.yaml `claims.groups`
#   user.scopes  string list, the scopes granted at login
#   user.claims  every claim. `user.claims.tenant = "acme"` is an error (logged, denied) for a
#                user without that claim; `user.claims matches {tenant: "acme"}` is simply false.
#
# THE RESOURCE: an instance of the type pdp.yaml names (Order, OrderList, Profile here), with:
#   resource.id      from the rule's id template: ":id" -> the path's :id segment; a literal stays as
#                    written; absent when the rule has no id (reading it is an error: denied, logged)
#   resource.params  every path parameter by name, e.g. resource.params.id
#   resource.path    the canonical path, e.g. "/api/orders/42"
#   resource.method  the HTTP method, upper case, e.g. "GET"
#   resource.route   the routes.yaml route name, e.g. "orders"
#
# Decisions are cached per (user, request) for the life of the loaded policy; a policy reload
# (SIGHUP) starts with an empty cache. Polar rules are pure, so this never changes an answer.

# --- Roles (RBAC): the IdP says who is a reader or an admin -----------------------------------

# A user has a role when the IdP lists it... (Named has_idp_role, not has_role: Oso reserves
# has_role(actor, role, resource) for resource blocks, which you may want to add later.)
has_idp_role(user: User, role: String) if role in user.roles;
# ...and an admin can do everything a reader can.
has_idp_role(user: User, "reader") if "admin" in user.roles;

# Readers list and read orders.
allow(user: User, "list", _orders: OrderList) if has_idp_role(user, "reader");
allow(user: User, "read", _order: Order) if has_idp_role(user, "reader");

# Admins create and change orders.
allow(user: User, "create", _orders: OrderList) if has_idp_role(user, "admin");
allow(user: User, "write", _order: Order) if has_idp_role(user, "admin");

# --- Ownership: anyone may read their own profile -------------------------------------------

# GET /api/profiles/:id is allowed when :id is the caller's own `sub`, whatever their roles.
allow(user: User, "read", profile: Profile) if profile.id = user.id;
