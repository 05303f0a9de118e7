package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Schema is one JSON Schema object of the document, as decoded JSON.
type Schema = map[string]any

// Doc is a loaded OpenAPI document.
type Doc struct {
	root map[string]any

	mu       sync.Mutex
	patterns map[string]*regexp.Regexp
}

// Load reads an OpenAPI document from a JSON file.
func Load(path string) (*Doc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load openapi: %w", err)
	}
	return Parse(raw)
}

// Parse decodes an OpenAPI document from JSON.
func Parse(raw []byte) (*Doc, error) {
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("parse openapi: %w", err)
	}
	if _, ok := root["paths"].(map[string]any); !ok {
		return nil, errors.New("parse openapi: no paths")
	}
	return &Doc{root: root, patterns: map[string]*regexp.Regexp{}}, nil
}

// operation finds the operation object with the given operationId.
func (d *Doc) operation(opID string) (Schema, error) {
	for _, item := range d.root["paths"].(map[string]any) {
		methods, _ := item.(map[string]any)
		for _, op := range methods {
			o, ok := op.(map[string]any)
			if ok && o["operationId"] == opID {
				return o, nil
			}
		}
	}
	return nil, fmt.Errorf("no operation %q", opID)
}

// RequestSchema returns the JSON request-body schema of an operation.
func (d *Doc) RequestSchema(opID string) (Schema, error) {
	op, err := d.operation(opID)
	if err != nil {
		return nil, err
	}
	s, ok := dig(op, "requestBody", "content", "application/json", "schema").(map[string]any)
	if !ok {
		return nil, fmt.Errorf("operation %q has no json request body", opID)
	}
	return s, nil
}

// ResponseSchema returns the JSON schema of an operation's answer with the
// given HTTP status.
func (d *Doc) ResponseSchema(opID string, status int) (Schema, error) {
	op, err := d.operation(opID)
	if err != nil {
		return nil, err
	}
	s, ok := dig(op, "responses", strconv.Itoa(status), "content", "application/json", "schema").(map[string]any)
	if !ok {
		return nil, fmt.Errorf("operation %q has no json answer for status %d", opID, status)
	}
	return s, nil
}

// Component returns the schema components/schemas/name.
func (d *Doc) Component(name string) (Schema, error) {
	return d.resolve("#/components/schemas/" + name)
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// resolve follows a local JSON pointer such as #/components/schemas/Instance.
func (d *Doc) resolve(ref string) (Schema, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("unsupported $ref %q", ref)
	}
	var v any = d.root
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		v = dig(v, part)
	}
	s, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q does not resolve to a schema", ref)
	}
	return s, nil
}

// Validate checks a JSON document against schema and returns every
// violation, each prefixed with its location, joined into one error.
func (d *Doc) Validate(schema Schema, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("decode instance: %w", err)
	}
	var problems []string
	d.check(schema, v, "$", &problems, 0)
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

func (d *Doc) check(s Schema, v any, at string, out *[]string, depth int) {
	fail := func(format string, args ...any) {
		*out = append(*out, at+": "+fmt.Sprintf(format, args...))
	}
	if depth > 64 {
		fail("schema nesting too deep")
		return
	}
	if ref, ok := s["$ref"].(string); ok {
		target, err := d.resolve(ref)
		if err != nil {
			fail("%v", err)
			return
		}
		d.check(target, v, at, out, depth+1)
	}
	if t, ok := s["type"]; ok && !typeMatches(t, v) {
		fail("want type %v, got %s", t, typeName(v))
		return
	}
	if c, ok := s["const"]; ok && !equalJSON(c, v) {
		fail("want const %v, got %v", c, v)
	}
	if enum, ok := s["enum"].([]any); ok && !containsJSON(enum, v) {
		fail("%v is not one of %v", v, enum)
	}
	d.checkCombinators(s, v, at, out, depth, fail)
	switch x := v.(type) {
	case map[string]any:
		d.checkObject(s, x, at, out, depth, fail)
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				d.check(items, e, fmt.Sprintf("%s[%d]", at, i), out, depth+1)
			}
		}
		checkBound(s, "minItems", float64(len(x)), false, fail)
		checkBound(s, "maxItems", float64(len(x)), true, fail)
	case string:
		n := float64(utf8.RuneCountInString(x))
		checkBound(s, "minLength", n, false, fail)
		checkBound(s, "maxLength", n, true, fail)
		if p, ok := s["pattern"].(string); ok {
			re, err := d.pattern(p)
			if err != nil {
				fail("bad pattern %q: %v", p, err)
			} else if !re.MatchString(x) {
				fail("%q does not match %q", x, p)
			}
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, x); err != nil {
				fail("%q is not a date-time", x)
			}
		}
	case json.Number:
		f, _ := x.Float64()
		checkBound(s, "minimum", f, false, fail)
		checkBound(s, "maximum", f, true, fail)
	}
}

func (d *Doc) checkCombinators(s Schema, v any, at string, out *[]string, depth int, fail func(string, ...any)) {
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			if m, ok := sub.(map[string]any); ok {
				d.check(m, v, at, out, depth+1)
			}
		}
	}
	count := func(list []any) (int, []string) {
		n := 0
		var why []string
		for i, sub := range list {
			m, _ := sub.(map[string]any)
			var p []string
			d.check(m, v, at, &p, depth+1)
			if len(p) == 0 {
				n++
			} else {
				why = append(why, fmt.Sprintf("branch %d: %s", i, strings.Join(p, ", ")))
			}
		}
		return n, why
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		if n, why := count(anyOf); n == 0 {
			fail("matches no anyOf branch (%s)", strings.Join(why, " | "))
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		if n, why := count(one); n != 1 {
			fail("matches %d oneOf branches, want 1 (%s)", n, strings.Join(why, " | "))
		}
	}
}

func (d *Doc) checkObject(s Schema, x map[string]any, at string, out *[]string, depth int, fail func(string, ...any)) {
	props, _ := s["properties"].(map[string]any)
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			name, _ := r.(string)
			if _, present := x[name]; !present {
				fail("missing required field %q", name)
			}
		}
	}
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		where := at + "." + k
		if p, ok := props[k].(map[string]any); ok {
			d.check(p, x[k], where, out, depth+1)
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case bool:
			if !ap {
				fail("unexpected field %q", k)
			}
		case map[string]any:
			d.check(ap, x[k], where, out, depth+1)
		}
	}
}

func (d *Doc) pattern(p string) (*regexp.Regexp, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if re, ok := d.patterns[p]; ok {
		return re, nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	d.patterns[p] = re
	return re, nil
}

func checkBound(s Schema, key string, got float64, isMax bool, fail func(string, ...any)) {
	b, ok := s[key].(float64)
	if !ok {
		return
	}
	if (isMax && got > b) || (!isMax && got < b) {
		fail("%s is %g, got %g", key, b, got)
	}
}
