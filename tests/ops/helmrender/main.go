// helmrender renders a Helm chart's templates with Go's text/template, the engine Helm uses,
// and the Helm/Sprig functions the selfheal chart needs (reimplemented on the standard
// library, so it builds offline). Usage: helmrender CHART_DIR CONTEXT_JSON
// CONTEXT_JSON holds {"Values": ..., "Chart": {...}, "Release": {...}}; the output is the
// rendered manifests, each preceded by "---\n# Source: <path>".
// An unknown function or a failing `required` exits 1 with Helm-like messages.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

func empty(v interface{}) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return r.Len() == 0
	case reflect.Bool:
		return !r.Bool()
	case reflect.Float32, reflect.Float64:
		return r.Float() == 0
	case reflect.Int, reflect.Int64, reflect.Int32:
		return r.Int() == 0
	}
	return false
}

func toString(v interface{}) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		if t == float64(int64(t)) {
			return fmt.Sprintf("%d", int64(t))
		}
		return fmt.Sprintf("%v", t)
	}
	return fmt.Sprintf("%v", v)
}

var plain = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9_./-]*$`)
var reserved = map[string]bool{"true": true, "false": true, "yes": true, "no": true, "on": true,
	"off": true, "null": true, "y": true, "n": true, "~": true}

func scalar(v interface{}) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("%v", t)
	case float64:
		return toString(t)
	case string:
		if plain.MatchString(t) && !reserved[strings.ToLower(t)] {
			return t
		}
		b, _ := json.Marshal(t)
		return string(b)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// toYaml emits block-style YAML with sorted keys, as Helm's toYaml does.
func toYaml(v interface{}) []string {
	switch t := v.(type) {
	case map[string]interface{}:
		if len(t) == 0 {
			return []string{"{}"}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			key := scalar(k)
			switch c := t[k].(type) {
			case map[string]interface{}:
				if len(c) == 0 {
					out = append(out, key+": {}")
					continue
				}
				out = append(out, key+":")
				for _, line := range toYaml(c) {
					out = append(out, "  "+line)
				}
			case []interface{}:
				if len(c) == 0 {
					out = append(out, key+": []")
					continue
				}
				out = append(out, key+":")
				out = append(out, toYaml(c)...)
			default:
				out = append(out, key+": "+scalar(c))
			}
		}
		return out
	case []interface{}:
		if len(t) == 0 {
			return []string{"[]"}
		}
		var out []string
		for _, item := range t {
			lines := toYaml(item)
			out = append(out, "- "+lines[0])
			for _, line := range lines[1:] {
				out = append(out, "  "+line)
			}
		}
		return out
	}
	return []string{scalar(v)}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: helmrender CHART_DIR CONTEXT_JSON")
		os.Exit(2)
	}
	chart := os.Args[1]
	raw, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var ctx map[string]interface{}
	if err := json.Unmarshal(raw, &ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	name := filepath.Base(chart)
	root := template.New(name)
	funcs := template.FuncMap{
		"include": func(n string, data interface{}) (string, error) {
			var buf bytes.Buffer
			err := root.ExecuteTemplate(&buf, n, data)
			return buf.String(), err
		},
		"toYaml": func(v interface{}) string { return strings.Join(toYaml(v), "\n") },
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"indent":  indent,
		"quote": func(v ...interface{}) string {
			out := make([]string, 0, len(v))
			for _, s := range v {
				if s != nil {
					b, _ := json.Marshal(toString(s))
					out = append(out, string(b))
				}
			}
			return strings.Join(out, " ")
		},
		"default": func(d interface{}, given ...interface{}) interface{} {
			if len(given) == 0 || empty(given[0]) {
				return d
			}
			return given[0]
		},
		"required": func(msg string, v interface{}) (interface{}, error) {
			if v == nil {
				return nil, errors.New(msg)
			}
			if s, ok := v.(string); ok && s == "" {
				return nil, errors.New(msg)
			}
			return v, nil
		},
		"trunc": func(n int, s string) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"b64enc":     func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"toString":   toString,
		"empty":      empty,
	}
	root.Funcs(funcs).Option("missingkey=zero")
	files, _ := filepath.Glob(filepath.Join(chart, "templates", "*"))
	sort.Strings(files)
	var manifests []string
	for _, f := range files {
		base := filepath.Base(f)
		if !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".tpl") {
			continue
		}
		text, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		tname := name + "/templates/" + base
		if _, err := root.New(tname).Parse(string(text)); err != nil {
			fmt.Fprintf(os.Stderr, "parse error: %v\n", err)
			os.Exit(1)
		}
		if !strings.HasPrefix(base, "_") {
			manifests = append(manifests, tname)
		}
	}
	var out bytes.Buffer
	for _, tname := range manifests {
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, tname, ctx); err != nil {
			fmt.Fprintf(os.Stderr, "Error: execution error at (%s): %v\n", tname, err)
			os.Exit(1)
		}
		rendered := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(rendered) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", tname, rendered)
	}
	os.Stdout.Write(out.Bytes())
}
