# Run-time support for Rego compiled from CEL by mcpgate's translate/cel package.
#
# Every function here is undefined whenever CEL would report an evaluation error, so that an
# erroring expression never matches, not even under negation. Functions that absorb errors
# as CEL does (&&, ||, ?:, the macros) take "captures": arrays holding the operand's value,
# or empty when the operand is undefined (the caller writes [v | v := operand]).
#
# Names avoid Rego's built-in function names (lt, plus, div, ...): a rule named like a
# built-in would shadow it inside this package.
package mcpgate.cel

# CEL a && b && ...: false if any operand is false, even if others error; true if all are true.
logical_and(caps) := false if {
	some c in caps
	c == [false]
} else := true if {
	every c in caps {
		c == [true]
	}
}

# CEL a || b || ...: true if any operand is true, even if others error; false if all are false.
logical_or(caps) := true if {
	some c in caps
	c == [true]
} else := false if {
	every c in caps {
		c == [false]
	}
}

# CEL !x: defined only for booleans.
logical_not(x) := false if {
	x == true
} else := true if {
	x == false
}

# CEL c ? a : b: only the chosen branch has to evaluate without error.
conditional(c, a, b) := a[0] if {
	c == true
} else := b[0] if {
	c == false
}

# CEL x in c: list membership, or key membership for maps.
member(x, c) := x in c if {
	is_array(c)
} else := true if {
	is_object(c)
	_ = c[x] # a key lookup, not a set of all keys
} else := false if {
	is_object(c)
}

# CEL has(o.k): presence of a map key. o itself must evaluate (a missing parent is an error,
# so the call is undefined). As in cel-go, a scalar or null has no fields (false) and a list is
# an error. (agentgateway's CEL answers false for lists too; an error is the safer answer.)
has_field(o, k) := true if {
	is_object(o)
	_ = o[k] # defined whatever the value, false and null included
} else := false if {
	not is_array(o)
}

# CEL ==, where OPA's type checker would reject a body-level == between values of different
# static types (CEL's heterogeneous equality yields false).
equals(a, b) := a == b

# CEL ordering is defined within numbers, strings and booleans only; Rego's total order across
# types (null < false < 0 < "" < ...) must not leak through.
less(a, b) := a < b if comparable(a, b)

less_or_equal(a, b) := a <= b if comparable(a, b)

greater(a, b) := a > b if comparable(a, b)

greater_or_equal(a, b) := a >= b if comparable(a, b)

comparable(a, b) if {
	is_number(a)
	is_number(b)
}

comparable(a, b) if {
	is_string(a)
	is_string(b)
}

comparable(a, b) if {
	is_boolean(a)
	is_boolean(b)
}

# CEL +: numbers add, strings and lists concatenate.
add(a, b) := a + b if {
	is_number(a)
	is_number(b)
} else := concat("", [a, b]) if {
	is_string(a)
	is_string(b)
} else := array.concat(a, b) if {
	is_array(a)
	is_array(b)
}

# CEL /: integral operands divide as ints (truncating towards zero), others as doubles.
# Division by zero is an error in both languages.
divide(a, b) := truncate(a / b) if {
	integral(a)
	integral(b)
} else := a / b

integral(x) if {
	is_number(x)
	x == round(x)
}

truncate(x) := floor(x) if {
	x >= 0
} else := ceil(x)

# Conversions: int(), uint(), double(), string(), bool().
to_int(x) := truncate(x) if {
	is_number(x)
} else := to_number(x) if {
	is_string(x)
	regex.match(`^[+-]?[0-9]+$`, x)
}

to_uint(x) := n if {
	n := to_int(x)
	n >= 0
}

to_double(x) := x if {
	is_number(x)
} else := to_number(x) if {
	is_string(x)
	regex.match(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`, x)
}

to_string(x) := x if {
	is_string(x)
} else := format_int(x, 10) if {
	integral(x)
} else := sprintf("%v", [x]) if {
	is_number(x)
} else := "true" if {
	x == true
} else := "false" if {
	x == false
}

to_bool(x) := x if {
	is_boolean(x)
} else := true if {
	x in {"1", "t", "T", "TRUE", "True", "true"}
} else := false if {
	x in {"0", "f", "F", "FALSE", "False", "false"}
}

# CEL dyn(x): the value unchanged, its static type forgotten (by OPA's type checker as well).
dyn(x) := x

# The values a macro iterates over: a list's elements or a map's keys (sorted); undefined for
# anything else, so that the caller fails instead of iterating over nothing.
iterable(x) := x if {
	is_array(x)
} else := [k | some k, _ in x] if {
	is_object(x)
}

# CEL l.exists_one(x, p): errors are not absorbed; exactly one element must satisfy p.
exists_one(caps) := count([c | some c in caps; c == [true]]) == 1 if {
	every c in caps {
		boolean_capture(c)
	}
}

# CEL l.map(x, f): every element must map without error.
collect(caps) := [c[0] | some c in caps] if {
	every c in caps {
		count(c) == 1
	}
}

# CEL l.filter(x, p), from pairs [element, capture of p].
filter(pairs) := [p[0] | some p in pairs; p[1] == [true]] if {
	every p in pairs {
		boolean_capture(p[1])
	}
}

# CEL l.map(x, p, f), from pairs [capture of p, capture of f]; f only matters where p holds.
map_filter(pairs) := [p[1][0] | some p in pairs; p[0] == [true]] if {
	every p in pairs {
		map_filter_ok(p)
	}
}

map_filter_ok(p) if p[0] == [false]

map_filter_ok(p) if {
	p[0] == [true]
	count(p[1]) == 1
}

boolean_capture(c) if c == [true]

boolean_capture(c) if c == [false]
