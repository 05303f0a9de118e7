package jobs

import (
	"errors"
	"fmt"
)

// Error codes of errors meant for a person.
const (
	ECONFLICT  = "conflict"  // the job is not in the state the caller expected
	EINTERNAL  = "internal"  // a failure the person cannot fix
	EINVALID   = "invalid"   // bad input
	ENOTFOUND  = "not_found" // no such job
	EFORBIDDEN = "forbidden" // not allowed for this person
	EBUDGET    = "budget"    // refused by a budget
	ECAPACITY  = "capacity"  // no GPU capacity anywhere allowed
)

// Error is an error whose message is meant for a person. The bot shows only
// its Message; everything else is logged.
type Error struct {
	Code    string
	Message string
}

// Error returns the message for a person.
func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message that reveals nothing internal.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error; the details are in the bot's log"
	}
}
