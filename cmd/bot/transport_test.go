package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestLambdaOperation(t *testing.T) {
	tests := []struct {
		method, path, want string
	}{
		{"GET", "/api/v1/instances/0920582c7ff041399e34823a0be62549", "getInstance"},
		{"GET", "/api/v1/instances", "listInstances"},
		{"GET", "/api/v1/instances/", "listInstances"},
		{"POST", "/api/v1/instance-operations/launch", "launchInstance"},
		{"POST", "/api/v1/instance-operations/terminate", "terminateInstance"},
		{"GET", "/api/v1/instance-types", "listInstanceTypes"},
		{"DELETE", "/api/v1/ssh-keys/abc", "deleteSSHKey"},
		{"GET", "/api/v1/file-systems", "listFilesystems"},
		{"GET", "/api/v1/firewall-rulesets/global", "getGlobalFirewallRuleset"},
		{"GET", "/api/v1/firewall-rulesets/fw-1", "getFirewallRuleset"},
		{"GET", "/prefix/api/v1/regions", "listRegions"}, // a base URL with a path
		{"PUT", "/api/v1/instances", "other"},
		{"GET", "/api/v1/instances/a/b", "other"},
		{"GET", "/api/v2/instances", "other"},
		{"GET", "/", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			if got := lambdaOperation(tt.method, tt.path); got != tt.want {
				t.Errorf("lambdaOperation(%s, %s) = %q, want %q", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

// TestLambdaOperationMatchesSpec checks every operation of Lambda's OpenAPI
// document, with its path parameters filled in, against its operationId.
func TestLambdaOperationMatchesSpec(t *testing.T) {
	raw, err := os.ReadFile("../../../shared/reference/lambda/lambda-cloud-openapi-1.10.0.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	n := 0
	for path, ops := range spec.Paths {
		for method, body := range ops {
			var op struct {
				OperationID string `json:"operationId"`
			}
			if json.Unmarshal(body, &op) != nil || op.OperationID == "" {
				continue
			}
			n++
			concrete := param.ReplaceAllString(path, "x1f2")
			if got := lambdaOperation(strings.ToUpper(method), concrete); got != op.OperationID {
				t.Errorf("%s %s: got %q, want %q", strings.ToUpper(method), concrete, got, op.OperationID)
			}
		}
	}
	if n != len(lambdaRoutes) {
		t.Errorf("the spec has %d operations, the table %d", n, len(lambdaRoutes))
	}
}

func TestSlackMethod(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/api/chat.postMessage", "chat.postMessage"},
		{"/api/apps.connections.open", "apps.connections.open"},
		{"/api/files.getUploadURLExternal/", "files.getUploadURLExternal"},
		{"/proxy/api/chat.update", "chat.update"},
		{"/upload/F0123", "other"},
		{"/upload/v1/ABC.def", "other"},
		{"/actions/T1/123/xyz", "other"},
		{"/api/", "other"},
		{"/api/../../etc", "other"},
		{"", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := slackMethod(tt.path); got != tt.want {
				t.Errorf("slackMethod(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
