package lambdatest

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

// OpenAPI operationIds the fake serves, for FailNext and Request.Operation.
const (
	OpListInstanceTypes = "listInstanceTypes"
	OpLaunch            = "launchInstance"
	OpTerminate         = "terminateInstance"
	OpListInstances     = "listInstances"
	OpGetInstance       = "getInstance"
	OpListSSHKeys       = "listSSHKeys"
	OpAddSSHKey         = "addSSHKey"
	OpDeleteSSHKey      = "deleteSSHKey"
	OpListFileSystems   = "listFilesystems"
	OpListRegions       = "listRegions"
	// OpAny, given to FailNext, matches every operation.
	OpAny = "*"
)

// handler serves one operation with the lock held and the lifecycle
// advanced. It returns the "data" payload, or an error answer.
type handler func(r *http.Request, body []byte, now time.Time) (any, *lambda.APIError)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	add := func(pattern, op string, h handler) { mux.Handle(pattern, s.serve(op, h)) }
	add("GET /api/v1/instance-types", OpListInstanceTypes, s.listInstanceTypes)
	add("POST /api/v1/instance-operations/launch", OpLaunch, s.launch)
	add("POST /api/v1/instance-operations/terminate", OpTerminate, s.terminate)
	add("GET /api/v1/instances", OpListInstances, s.listInstances)
	add("GET /api/v1/instances/{id}", OpGetInstance, s.getInstance)
	add("GET /api/v1/ssh-keys", OpListSSHKeys, s.listSSHKeys)
	add("POST /api/v1/ssh-keys", OpAddSSHKey, s.addSSHKey)
	add("DELETE /api/v1/ssh-keys/{id}", OpDeleteSSHKey, s.deleteSSHKey)
	add("GET /api/v1/file-systems", OpListFileSystems, s.listFileSystems)
	add("GET /api/v1/regions", OpListRegions, s.listRegions)
	add("/", "", func(r *http.Request, _ []byte, _ time.Time) (any, *lambda.APIError) {
		return nil, apiErr(http.StatusNotFound, lambda.CodeNotFound, "The requested resource was not found.")
	})
	return mux
}

// serve wraps a handler with authentication, fault injection, JSON encoding
// and the request log.
func (s *Server) serve(op string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		now, unlock := s.lock()
		var data any
		var fail *lambda.APIError
		var retryAfter time.Duration
		switch {
		case !s.authorized(r.Header.Get("Authorization")):
			fail = apiErr(http.StatusUnauthorized, lambda.CodeInvalidAPIKey, "API key was invalid, expired, or deleted.")
		default:
			if f, ok := s.takeFaultLocked(op); ok {
				fail, retryAfter = f.apiError(), f.retryAfter
			} else {
				data, fail = h(r, body, now)
			}
		}
		status := http.StatusOK
		code := ""
		if fail != nil {
			status, code = fail.Status, fail.Code
		}
		s.requests = append(s.requests, Request{
			Operation: op, Method: r.Method, Path: r.URL.Path, Time: now,
			Status: status, ErrorCode: code, Body: body,
		})
		unlock()
		s.log.Debug("request", "op", op, "method", r.Method, "path", r.URL.Path, "status", status, "code", code)

		var out any
		if fail != nil {
			out = errorEnvelope(fail)
			if retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
			}
		} else {
			out = map[string]any{"data": data}
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(out); err != nil {
			http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	})
}

func errorEnvelope(e *lambda.APIError) map[string]any {
	inner := map[string]any{"code": e.Code, "message": e.Message}
	if e.Suggestion != "" {
		inner["suggestion"] = e.Suggestion
	}
	return map[string]any{"error": inner}
}

// authorized accepts "Bearer <key>", "Basic <key>" and "Basic base64(<key>:)".
func (s *Server) authorized(h string) bool {
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok {
		return false
	}
	switch strings.ToLower(scheme) {
	case "bearer":
	case "basic":
		if dec, err := base64.StdEncoding.DecodeString(cred); err == nil {
			if user, _, found := strings.Cut(string(dec), ":"); found {
				cred = user
			}
		}
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(cred), []byte(s.apiKey)) == 1
}

// defaultSuggestions fill the suggestion for codes whose schema requires one.
var defaultSuggestions = map[string]string{
	lambda.CodeInvalidAPIKey:      "Check your API key or create a new one, then try again.",
	lambda.CodeAccountInactive:    "Make sure you have verified your email address and have a valid payment method. Contact Support if problems continue.",
	lambda.CodeQuotaExceeded:      "Contact Support to increase your quota.",
	lambda.CodeInternalError:      "Try again later. Contact Support if the problem persists.",
	lambda.CodeObjectDoesNotExist: "Check the name or id and try again.",
	lambda.CodeTooManyRequests:    "Slow down and try again shortly.",
}

func apiErr(status int, code, msg string) *lambda.APIError {
	return &lambda.APIError{Status: status, Code: code, Message: msg, Suggestion: defaultSuggestions[code]}
}

func invalid(msg string) *lambda.APIError {
	return apiErr(http.StatusBadRequest, lambda.CodeInvalidParameters, msg)
}

func decodeBody(body []byte, v any) *lambda.APIError {
	if err := json.Unmarshal(body, v); err != nil {
		return invalid("Invalid request data: " + err.Error())
	}
	return nil
}
