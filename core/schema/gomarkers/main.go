// Command gomarkers reads the Go source of Kubernetes API packages and prints, as JSON, the facts
// controller-gen takes from that source which the published OpenAPI documents do not carry.
//
// core/schema/regenerate.sh runs it next to the OpenAPI v3 documents of the same Kubernetes
// version; core/src/crd/kubernetes.rs applies its output (see the module docs there):
//
//   - the markers of each struct field that bear on the schema and are not visible in OpenAPI:
//     `+default=` (kube-openapi also writes Go zero values as defaults, controller-gen writes only
//     these; a `ref(...)` default is resolved by kube-openapi and not by controller-gen),
//     `+kubebuilder:default=` and `+kubebuilder:validation:*` (kube-openapi ignores them);
//   - the structs each struct embeds inline, whose type-level markers controller-gen carries
//     into the embedding struct's schema.
//
// Usage: gomarkers <go package dir>=<OpenAPI definition prefix>... Only the standard library is
// used, so `go run` needs no module.
package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// definition is what the output says about one struct, keyed by its OpenAPI definition name.
type definition struct {
	// Inline-embedded structs, as OpenAPI definition names.
	Embeds []string `json:"embeds,omitempty"`
	// JSON field name -> the field's schema markers, in source order.
	Markers map[string][]string `json:"markers,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gomarkers <package dir>=<definition prefix>...")
		os.Exit(2)
	}
	out := map[string]definition{}
	for _, arg := range os.Args[1:] {
		dir, prefix, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "gomarkers: %q is not <dir>=<prefix>\n", arg)
			os.Exit(2)
		}
		if err := readPackage(dir, prefix, out); err != nil {
			fmt.Fprintf(os.Stderr, "gomarkers: %s: %v\n", dir, err)
			os.Exit(1)
		}
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "gomarkers: %v\n", err)
		os.Exit(1)
	}
}

// readPackage adds every struct type of the package in dir to out (test files aside).
func readPackage(dir, prefix string, out map[string]definition) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	fset := token.NewFileSet()
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return err
		}
		imports := importPrefixes(file)
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.TYPE {
				continue
			}
			for _, spec := range gen.Specs {
				typeSpec := spec.(*ast.TypeSpec)
				if structType, ok := typeSpec.Type.(*ast.StructType); ok {
					out[prefix+"."+typeSpec.Name.Name] = readStruct(structType, prefix, imports)
				}
			}
		}
	}
	return nil
}

// importPrefixes maps a file's import names to OpenAPI definition prefixes, the way kube-openapi
// names k8s.io packages ("k8s.io/api/core/v1" -> "io.k8s.api.core.v1").
func importPrefixes(file *ast.File) map[string]string {
	prefixes := map[string]string{}
	for _, spec := range file.Imports {
		path, err := strconv.Unquote(spec.Path.Value)
		if err != nil || !strings.HasPrefix(path, "k8s.io/") {
			continue
		}
		name := path[strings.LastIndex(path, "/")+1:]
		if spec.Name != nil {
			name = spec.Name.Name
		}
		prefixes[name] = "io.k8s." + strings.ReplaceAll(strings.TrimPrefix(path, "k8s.io/"), "/", ".")
	}
	return prefixes
}

func readStruct(structType *ast.StructType, prefix string, imports map[string]string) definition {
	var def definition
	for _, field := range structType.Fields.List {
		tag := ""
		if field.Tag != nil {
			if unquoted, err := strconv.Unquote(field.Tag.Value); err == nil {
				tag = reflect.StructTag(unquoted).Get("json")
			}
		}
		jsonName, _, _ := strings.Cut(tag, ",")
		if len(field.Names) == 0 && jsonName == "" {
			if embedded := typeName(field.Type, prefix, imports); embedded != "" {
				def.Embeds = append(def.Embeds, embedded)
			}
			continue
		}
		if jsonName == "" || jsonName == "-" {
			continue
		}
		markers := schemaMarkers(field.Doc)
		if len(markers) == 0 {
			continue
		}
		if def.Markers == nil {
			def.Markers = map[string][]string{}
		}
		def.Markers[jsonName] = markers
	}
	return def
}

// typeName is the OpenAPI definition name of an embedded field's type, or "" for a type outside
// the k8s.io packages.
func typeName(expr ast.Expr, prefix string, imports map[string]string) string {
	switch t := expr.(type) {
	case *ast.Ident:
		return prefix + "." + t.Name
	case *ast.StarExpr:
		return typeName(t.X, prefix, imports)
	case *ast.SelectorExpr:
		if pkg, ok := t.X.(*ast.Ident); ok {
			if p, ok := imports[pkg.Name]; ok {
				return p + "." + t.Sel.Name
			}
		}
	}
	return ""
}

// schemaMarkers are the comment lines of a field that controller-gen reads into the schema and
// kube-openapi does not (see the package docs), without the comment slashes.
func schemaMarkers(doc *ast.CommentGroup) []string {
	if doc == nil {
		return nil
	}
	var markers []string
	for _, comment := range doc.List {
		line := strings.TrimSpace(strings.TrimPrefix(comment.Text, "//"))
		if strings.HasPrefix(line, "+default=") || strings.HasPrefix(line, "+kubebuilder:default=") ||
			strings.HasPrefix(line, "+kubebuilder:validation:") {
			markers = append(markers, line)
		}
	}
	return markers
}
