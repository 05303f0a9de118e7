package lambda_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

func TestErrorHelpers(t *testing.T) {
	helpers := map[string]func(error) bool{
		"capacity":     lambda.IsCapacity,
		"rateLimited":  lambda.IsRateLimited,
		"notFound":     lambda.IsNotFound,
		"unauthorized": lambda.IsUnauthorized,
		"quota":        lambda.IsQuotaExceeded,
	}
	tests := []struct {
		name string
		err  error
		want string // the one helper that must say yes; "" = none
	}{
		{"capacity", &lambda.APIError{Status: 400, Code: lambda.CodeInsufficientCapacity}, "capacity"},
		{"rate limited by status", &lambda.APIError{Status: 429}, "rateLimited"},
		{"object does not exist", &lambda.APIError{Status: 404, Code: lambda.CodeObjectDoesNotExist}, "notFound"},
		{"not found", &lambda.APIError{Status: 404, Code: lambda.CodeNotFound}, "notFound"},
		{"unauthorized", &lambda.APIError{Status: 401, Code: lambda.CodeInvalidAPIKey}, "unauthorized"},
		{"quota", &lambda.APIError{Status: 400, Code: lambda.CodeQuotaExceeded}, "quota"},
		{"wrapped capacity", fmt.Errorf("launch x: %w", &lambda.APIError{Status: 400, Code: lambda.CodeInsufficientCapacity}), "capacity"},
		{"invalid parameters", &lambda.APIError{Status: 400, Code: lambda.CodeInvalidParameters}, ""},
		{"plain error", errors.New("global/quota-exceeded"), ""},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, is := range helpers {
				if got := is(tt.err); got != (name == tt.want) {
					t.Errorf("%s(%v) = %v", name, tt.err, got)
				}
			}
		})
	}
}

func TestAPIErrorString(t *testing.T) {
	e := &lambda.APIError{Status: 400, Code: lambda.CodeQuotaExceeded, Message: "Quota exceeded.", Suggestion: "Contact Support."}
	if got, want := e.Error(), "lambda api: 400 global/quota-exceeded: Quota exceeded. (Contact Support.)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestErrorHelpersAgainstFake checks each helper on a real answer.
func TestErrorHelpersAgainstFake(t *testing.T) {
	ctx := context.Background()
	srv := newCloud(t, lambdatest.Options{})
	c := newClient(t, srv, lambda.Config{MaxRetries: -1})
	wrongKey := newClient(t, srv, lambda.Config{APIKey: "nope"})
	tests := []struct {
		name  string
		setup func()
		call  func() error
		is    func(error) bool
	}{
		{"unauthorized", nil, func() error { _, err := wrongKey.ListRegions(ctx); return err }, lambda.IsUnauthorized},
		{"not found", nil, func() error { _, err := c.GetInstance(ctx, "0123"); return err }, lambda.IsNotFound},
		{"capacity", func() { srv.SetCapacity("gpu_1x_a10", "us-east-1", false) }, func() error { _, err := c.Launch(ctx, a10East); return err }, lambda.IsCapacity},
		{"rate limited", func() { srv.FailNext(lambdatest.OpListInstances, http.StatusTooManyRequests, 1) }, func() error { _, err := c.ListInstances(ctx); return err }, lambda.IsRateLimited},
		{"quota", func() {
			srv.SetQuota(1)
			srv.SetCapacity("gpu_1x_a10", "us-east-1", true)
			_, _ = c.Launch(ctx, a10East)
		},
			func() error { _, err := c.Launch(ctx, a10East); return err }, lambda.IsQuotaExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			err := tt.call()
			if !tt.is(err) {
				t.Fatalf("err = %v", err)
			}
			if errors.Is(err, lambda.ErrAmbiguousLaunch) {
				t.Fatalf("err = %v must not be ambiguous", err)
			}
		})
	}
}
