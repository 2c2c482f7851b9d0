package translate

import (
	"errors"
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/ir"
	mcprego "github.com/mcpgate/mcpgate/rego"
)

// UserPackage is the package prefix of user Rego modules: each declares
// package mcpgate.user.<name>, so it can add to the decision but never
// replace a rule of the library.
const UserPackage = "mcpgate.user"

// UserPath is where a user module lives in the bundle.
func UserPath(name string) string { return "mcpgate/user/" + name + ".rego" }

// userModules validates and attaches user Rego: the global modules (files
// next to the YAML) and the modules of MCPRegoPolicy objects. Errors name the
// file or object and the line.
func (t *translator) userModules(cfg *ir.Config, modules map[string]string, at *attachments) {
	owner := map[string]string{} // package name -> source, to refuse duplicates
	for i, m := range t.res.Modules {
		if isLogModule(m.Text) {
			t.logModule(i, m.Source, m.Text, modules)
			continue
		}
		if u, ok := t.userModule(m.Source, m.Text, owner, func(msg string) { t.errs = append(t.errs, fmt.Errorf("%w: %s: %s", ErrTranslate, m.Source, msg)) }); ok {
			cfg.User[u.Name] = u
			modules[UserPath(u.Name)] = m.Text
			at.globalUser = append(at.globalUser, u.Name)
		}
	}
	sort.Strings(at.globalUser)
	pols := append(t.res.RegoPolicies[:0:0], t.res.RegoPolicies...)
	sort.Slice(pols, func(i, j int) bool {
		return key(pols[i].Namespace, pols[i].Name) < key(pols[j].Namespace, pols[j].Name)
	})
	for _, p := range pols {
		kind, ns, name := "MCPRegoPolicy", p.Namespace, p.Name
		targets, ok := t.targetRefs(kind, ns, name, p.Spec.TargetRefs)
		if !ok {
			continue
		}
		if len(p.Spec.Modules) == 0 {
			t.fail(kind, ns, name, "spec.modules", "at least one module is required")
			continue
		}
		for i, m := range p.Spec.Modules {
			field := fmt.Sprintf("spec.modules[%d]", i)
			source := fmt.Sprintf("%s %s/%s %s (%s)", kind, ns, name, field, m.Name)
			u, ok := t.userModule(source, m.Rego, owner, func(msg string) { t.fail(kind, ns, name, field, "%s", msg) })
			if !ok {
				continue
			}
			cfg.User[u.Name] = u
			modules[UserPath(u.Name)] = m.Rego
			for _, tg := range targets {
				at.user[tg] = append(at.user[tg], u.Name)
			}
		}
	}
}

// LogPackage is the package of decision-log masking and drop rules, as in
// OPA: data.system.log.mask (JSON pointers to remove, or upsert operations)
// and data.system.log.drop. Only files next to the YAML may declare it: it
// is an operator's concern, not a route's.
const LogPackage = "system.log"

// isLogModule reports whether a module declares package system.log (a
// module that does not parse is left to userModule to report).
func isLogModule(text string) bool {
	mod, err := ast.ParseModuleWithOpts("", text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	return err == nil && mod.Package.Path.Equal(ast.MustParseRef("data."+LogPackage))
}

// logModule checks a system.log module and places it in the bundle at
// system/log/<n>.rego.
func (t *translator) logModule(i int, source, text string, modules map[string]string) {
	mod, err := ast.ParseModuleWithOpts(source, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err == nil {
		err = compileWithLibrary(source, mod)
	}
	if err != nil {
		t.errs = append(t.errs, fmt.Errorf("%w: %s: %v", ErrTranslate, source, err))
		return
	}
	modules[fmt.Sprintf("system/log/m%d.rego", i)] = text
}

// userModule parses one module and checks the namespace rule and that it
// compiles against the library.
func (t *translator) userModule(source, text string, owner map[string]string, fail func(string)) (*ir.User, bool) {
	mod, err := ast.ParseModuleWithOpts(source, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		fail(err.Error())
		return nil, false
	}
	path := mod.Package.Path
	prefix := ast.MustParseRef("data." + UserPackage)
	if len(path) != len(prefix)+1 || !path.HasPrefix(prefix) {
		fail(fmt.Sprintf("%s:%d: package must be %s.<name>, got %s", source, mod.Package.Location.Row, UserPackage, path))
		return nil, false
	}
	nameTerm, ok := path[len(path)-1].Value.(ast.String)
	if !ok || !validName(string(nameTerm)) {
		fail(fmt.Sprintf("%s:%d: package name %s: use letters, digits, '-' and '_'", source, mod.Package.Location.Row, path[len(path)-1]))
		return nil, false
	}
	name := string(nameTerm)
	if other, taken := owner[name]; taken {
		fail(fmt.Sprintf("package %s.%s is already defined by %s", UserPackage, name, other))
		return nil, false
	}
	u := &ir.User{Name: name, Source: source}
	for _, r := range mod.Rules {
		switch r.Head.Name.String() {
		case "allow":
			u.Allow = true
		case "deny":
			u.Deny = true
		case "ratelimit":
			u.RateLimit = true
		case "http_status":
			u.Status = true
		}
	}
	if err := compileWithLibrary(source, mod); err != nil {
		fail(err.Error())
		return nil, false
	}
	owner[name] = source
	return u, true
}

// compileWithLibrary compiles a user module together with the library, so
// that errors (unknown functions, recursion through the decision, type
// errors) are reported with the user's file and line.
func compileWithLibrary(source string, mod *ast.Module) error {
	mods := map[string]*ast.Module{source: mod}
	for p, text := range mcprego.Modules() {
		lm, err := ast.ParseModuleWithOpts(p, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		mods[p] = lm
	}
	c := ast.NewCompiler()
	if c.Compile(mods); c.Failed() {
		return errors.New(c.Errors.Error())
	}
	return nil
}
