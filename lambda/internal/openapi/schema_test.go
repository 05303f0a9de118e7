package openapi_test

import (
	"strings"
	"testing"

	"github.com/cpbot/cpbot/lambda/internal/openapi"
)

const specPath = "../../../../shared/reference/lambda/lambda-cloud-openapi-1.10.0.json"

func mustLoad(t *testing.T) *openapi.Doc {
	t.Helper()
	doc, err := openapi.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestValidateInstance(t *testing.T) {
	doc := mustLoad(t)
	inst, err := doc.Component("Instance")
	if err != nil {
		t.Fatal(err)
	}
	const good = `{"id":"abc","status":"active","ssh_key_names":["k"],"file_system_names":[],
		"region":{"name":"us-east-1","description":"Virginia"},
		"instance_type":{"name":"gpu_1x_a10","description":"1x A10","gpu_description":"A10","price_cents_per_hour":75,
			"specs":{"vcpus":30,"memory_gib":200,"storage_gib":1400,"gpus":1}},
		"actions":{"migrate":{"available":false},"rebuild":{"available":true},"restart":{"available":true},
			"cold_reboot":{"available":true},"terminate":{"available":true}}}`
	if err := doc.Validate(inst, []byte(good)); err != nil {
		t.Fatalf("valid instance rejected: %v", err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"renamed required field", `"ssh_key_names"`, `"ssh_keys"`, `missing required field "ssh_key_names"`},
		{"missing nested required", `"gpus":1`, `"gpu_count":1`, `missing required field "gpus"`},
		{"bad enum", `"status":"active"`, `"status":"running"`, "is not one of"},
		{"wrong type", `"price_cents_per_hour":75`, `"price_cents_per_hour":"75"`, "want type integer"},
		{"float for integer", `"vcpus":30`, `"vcpus":30.5`, "want type integer"},
		{"null array", `"file_system_names":[]`, `"file_system_names":null`, "want type array"},
		{"missing actions", `"actions":{`, `"actionz":{`, `missing required field "actions"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(good, tt.from, tt.to, 1)
			if bad == good {
				t.Fatalf("replacement %q not applied", tt.from)
			}
			err := doc.Validate(inst, []byte(bad))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestValidateErrorEnvelopes(t *testing.T) {
	doc := mustLoad(t)
	s, err := doc.ResponseSchema("launchInstance", 400)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"capacity", `{"error":{"code":"instance-operations/launch/insufficient-capacity","message":"no"}}`, true},
		{"quota needs suggestion", `{"error":{"code":"global/quota-exceeded","message":"q"}}`, false},
		{"quota", `{"error":{"code":"global/quota-exceeded","message":"q","suggestion":"s"}}`, true},
		{"unknown code", `{"error":{"code":"global/whatever","message":"x"}}`, false},
		{"extra top-level field", `{"error":{"code":"global/invalid-parameters","message":"x"},"data":1}`, false},
		{"not json", `{`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := doc.Validate(s, []byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%s) = %v, want ok=%v", tt.body, err, tt.ok)
			}
		})
	}
}

func TestSchemaLookups(t *testing.T) {
	doc := mustLoad(t)
	req, err := doc.RequestSchema("launchInstance")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"minimal", `{"region_name":"r","instance_type_name":"t","ssh_key_names":["k"]}`, true},
		{"long name", `{"region_name":"r","instance_type_name":"t","ssh_key_names":["k"],"name":"` + strings.Repeat("x", 65) + `"}`, false},
		{"bad hostname pattern", `{"region_name":"r","instance_type_name":"t","ssh_key_names":["k"],"hostname":"-x"}`, false},
		{"missing key names", `{"region_name":"r","instance_type_name":"t"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := doc.Validate(req, []byte(tt.body)); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := doc.ResponseSchema("launchInstance", 418); err == nil {
		t.Error("ResponseSchema for an undocumented status should fail")
	}
	if _, err := doc.RequestSchema("noSuchOperation"); err == nil {
		t.Error("RequestSchema for an unknown operation should fail")
	}
}
