package main

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// instrumented is an http.RoundTripper that counts and times the requests
// of one API (Lambda or Slack) for the metrics.
type instrumented struct {
	next    http.RoundTripper
	name    func(*http.Request) string // the operation or method label
	calls   func(name, code string)
	latency func(name string, d time.Duration)
	limited func()
	// answered, if set, learns each answer's status (for the health check).
	answered func(status int, at time.Time)
	now      func() time.Time
}

// RoundTrip sends the request through next and records what came back.
func (t *instrumented) RoundTrip(r *http.Request) (*http.Response, error) {
	name := t.name(r)
	start := t.now()
	resp, err := t.next.RoundTrip(r)
	end := t.now()
	t.latency(name, end.Sub(start))
	if err != nil {
		t.calls(name, "error")
		return resp, err
	}
	t.calls(name, strconv.Itoa(resp.StatusCode))
	if resp.StatusCode == http.StatusTooManyRequests {
		t.limited()
	}
	if t.answered != nil {
		t.answered(resp.StatusCode, end)
	}
	return resp, err
}

// lambdaRoute maps a method and a path under /api/v1 to the operationId of
// Lambda's OpenAPI document; {…} segments match any one segment.
type lambdaRoute struct {
	method string
	path   []string
	op     string
}

// lambdaRoutes are the operations of Lambda's OpenAPI 1.10.0 document.
var lambdaRoutes = routes(
	"GET /audit-events getAuditEvents",
	"POST /fabric createFabricPartition",
	"POST /fabric/{id} updateFabricPartition",
	"DELETE /fabric/{id} deleteFabricPartition",
	"GET /file-systems listFilesystems",
	"POST /filesystems createFilesystem",
	"DELETE /filesystems/{id} filesystemDelete",
	"GET /firewall-rules firewallRulesList",
	"PUT /firewall-rules firewallRulesSet",
	"GET /firewall-rulesets firewallRulesetsList",
	"POST /firewall-rulesets createFirewallRuleset",
	"GET /firewall-rulesets/global getGlobalFirewallRuleset",
	"PATCH /firewall-rulesets/global updateGlobalFirewallRuleset",
	"GET /firewall-rulesets/{id} getFirewallRuleset",
	"PATCH /firewall-rulesets/{id} updateFirewallRuleset",
	"DELETE /firewall-rulesets/{id} deleteFirewallRuleset",
	"GET /images listImages",
	"POST /instance-operations/launch launchInstance",
	"POST /instance-operations/restart restartInstance",
	"POST /instance-operations/terminate terminateInstance",
	"GET /instance-types listInstanceTypes",
	"GET /instances listInstances",
	"GET /instances/{id} getInstance",
	"POST /instances/{id} postInstance",
	"GET /regions listRegions",
	"GET /ssh-keys listSSHKeys",
	"POST /ssh-keys addSSHKey",
	"DELETE /ssh-keys/{id} deleteSSHKey",
	"GET /tickets listTickets",
	"POST /tickets createTicket",
	"GET /tickets/{ticket_id} getTicket",
	"PATCH /tickets/{ticket_id} updateTicket",
	"GET /tickets/{ticket_id}/attachments listAttachments",
	"POST /tickets/{ticket_id}/attachments initiateAttachmentUpload",
	"DELETE /tickets/{ticket_id}/attachments/{attachment_id} deleteAttachment",
	"POST /tickets/{ticket_id}/attachments/{attachment_id}/complete completeAttachmentUpload",
	"GET /tickets/{ticket_id}/attachments/{attachment_id}/download getAttachmentDownloadUrl",
)

func routes(lines ...string) []lambdaRoute {
	out := make([]lambdaRoute, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		out = append(out, lambdaRoute{method: f[0], path: strings.Split(strings.Trim(f[1], "/"), "/"), op: f[2]})
	}
	return out
}

// lambdaOperation names a Lambda API request by its OpenAPI operationId
// (GET /api/v1/instances/{id} is getInstance); anything else is "other".
// Literal segments win over {…} ones (firewall-rulesets/global).
func lambdaOperation(method, path string) string {
	_, rest, ok := strings.Cut(path, "/api/v1/")
	if !ok {
		return "other"
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	best, bestWild := "other", len(segs)+1
	for _, rt := range lambdaRoutes {
		if rt.method != method || len(rt.path) != len(segs) {
			continue
		}
		wild, match := 0, true
		for i, p := range rt.path {
			switch {
			case strings.HasPrefix(p, "{"):
				if segs[i] == "" {
					match = false
				}
				wild++
			case p != segs[i]:
				match = false
			}
		}
		if match && wild < bestWild {
			best, bestWild = rt.op, wild
		}
	}
	return best
}

// slackMethodName is what a Web API method looks like (chat.postMessage).
var slackMethodName = regexp.MustCompile(`^[a-zA-Z]+(\.[a-zA-Z]+)+$`)

// slackMethod names a Slack Web API request by the last element of its
// path (…/api/chat.postMessage is chat.postMessage). Requests elsewhere
// (upload URLs, response URLs) are "other", which keeps the label's values
// few.
func slackMethod(path string) string {
	dir, last, ok := cutLast(strings.TrimRight(path, "/"))
	if !ok || !strings.HasSuffix(dir, "/api") && dir != "api" || !slackMethodName.MatchString(last) {
		return "other"
	}
	return last
}

func cutLast(p string) (dir, last string, ok bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p, false
	}
	return p[:i], p[i+1:], true
}
