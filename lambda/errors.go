package lambda

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes Lambda returns in the "code" field of an error response. Branch
// on these (or on the Is* helpers), never on the message text.
const (
	CodeInvalidAPIKey         = "global/invalid-api-key"
	CodeAccountInactive       = "global/account-inactive"
	CodeForbidden             = "global/forbidden"
	CodeInvalidParameters     = "global/invalid-parameters"
	CodeObjectDoesNotExist    = "global/object-does-not-exist"
	CodeNotFound              = "global/not-found"
	CodeQuotaExceeded         = "global/quota-exceeded"
	CodeInternalError         = "global/internal-error"
	CodeDuplicate             = "global/duplicate"
	CodeConflict              = "global/conflict"
	CodeInsufficientCapacity  = "instance-operations/launch/insufficient-capacity"
	CodeFileSystemWrongRegion = "instance-operations/launch/file-system-in-wrong-region"
	// CodeTooManyRequests is not listed in Lambda's OpenAPI document; rate
	// limiting is recognised by the HTTP status 429 whatever the code says.
	CodeTooManyRequests = "global/too-many-requests"
)

// ErrAmbiguousLaunch marks a launch whose outcome is unknown: the request
// timed out, failed in transport, or got a 5xx answer, so an instance may or
// may not have been created. The client never retries such a launch; look the
// instance up by name (Client.FindInstanceByName) before launching again.
var ErrAmbiguousLaunch = errors.New("launch outcome unknown")

// APIError is an error answer from the Lambda Cloud API. It carries no
// request headers, so it never contains the API key.
type APIError struct {
	// Status is the HTTP status code of the answer.
	Status int
	// Code is Lambda's machine-readable error code, e.g.
	// "instance-operations/launch/insufficient-capacity".
	Code string
	// Message explains the error to a person.
	Message string
	// Suggestion, when present, says how to address the error.
	Suggestion string
}

// Error returns the status, code and message.
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = "no code"
	}
	msg := fmt.Sprintf("lambda api: %d %s: %s", e.Status, code, e.Message)
	if e.Suggestion != "" {
		msg += " (" + e.Suggestion + ")"
	}
	return msg
}

// Temporary reports whether the same request may succeed later: a rate
// limit or a server-side failure.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

func asAPIError(err error) (*APIError, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr, true
	}
	return nil, false
}

// IsCapacity reports whether err says Lambda has no capacity for the
// requested instance type in the requested region.
func IsCapacity(err error) bool {
	e, ok := asAPIError(err)
	return ok && e.Code == CodeInsufficientCapacity
}

// IsRateLimited reports whether err is a rate-limit answer (HTTP 429).
func IsRateLimited(err error) bool {
	e, ok := asAPIError(err)
	return ok && (e.Status == http.StatusTooManyRequests || e.Code == CodeTooManyRequests)
}

// IsNotFound reports whether err says the object (instance, SSH key, file
// system, route) does not exist.
func IsNotFound(err error) bool {
	e, ok := asAPIError(err)
	if !ok {
		return false
	}
	return e.Code == CodeObjectDoesNotExist || e.Code == CodeNotFound ||
		(e.Code == "" && e.Status == http.StatusNotFound)
}

// IsUnauthorized reports whether err says the API key is invalid, expired or
// deleted.
func IsUnauthorized(err error) bool {
	e, ok := asAPIError(err)
	return ok && (e.Code == CodeInvalidAPIKey || (e.Code == "" && e.Status == http.StatusUnauthorized))
}

// IsQuotaExceeded reports whether err says the account's quota is used up.
func IsQuotaExceeded(err error) bool {
	e, ok := asAPIError(err)
	return ok && e.Code == CodeQuotaExceeded
}
