# METADATA
# title: mcpgate rate limits
# description: |
#   Which counters an allowed request must pass. Rego decides the
#   descriptors; Go counts them (ulule/limiter, in memory or in Redis) and
#   admits the request only if every descriptor has room, consuming none
#   when any is full.
#   - traffic.rateLimit.local rules (agentgateway): one counter per rule,
#     capacity requests + burst per unit, for every request of the routes the
#     policy applies to;
#   - user Rego (package mcpgate.user.<name>): a `ratelimit` set of
#     {"key", "limit", "period"} descriptors, keyed as the module likes (per
#     subject, per tool, per claim...).
package mcpgate.ratelimit

import data.mcpgate.config

descriptors := array.concat(local, user)

local := [d |
	some p in config.routes[input.route.key].ratelimit
	some i, r in config.ratelimit[p].rules
	applies(r, [p, i])
	d := {
		"key": key_of(r, [p, i]),
		"limit": r.requests + r.burst,
		"period": r.seconds,
		"burst": r.burst,
	}
]

# Keyed limits (MCPRateLimitPolicy): the values of the CEL keys and the
# conditions that hold, from the generated routes module.
keys := {[p, i]: k | some [p, i, k] in data.mcpgate.generated.routes.limit_key}

whens := {[p, i] | some [p, i] in data.mcpgate.generated.routes.limit_when}

applies(r, _) if object.get(r, "when", "") == ""

applies(r, id) if {
	object.get(r, "when", "") != ""
	id in whens
}

key_of(r, id) := sprintf("local/%s/%d", id) if {
	object.get(r, "key", "") == ""
} else := sprintf("local/%s/%d/%s", [id[0], id[1], json.marshal(keys[id])]) if {
	id in object.keys(keys)
} else := sprintf("local/%s/%d/undefined", id)

user := [d |
	some [u, x] in data.mcpgate.generated.routes.user_ratelimit
	d := {
		"key": sprintf("user/%s/%v", [u, x.key]),
		"limit": x.limit,
		"period": x.period,
		"burst": object.get(x, "burst", 0),
	}
]
