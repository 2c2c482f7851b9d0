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
	d := {
		"key": sprintf("local/%s/%d", [p, i]),
		"limit": r.requests + r.burst,
		"period": r.seconds,
		"burst": r.burst,
	}
]

user := [d |
	some [u, x] in data.mcpgate.generated.routes.user_ratelimit
	d := {
		"key": sprintf("user/%s/%v", [u, x.key]),
		"limit": x.limit,
		"period": x.period,
		"burst": object.get(x, "burst", 0),
	}
]
