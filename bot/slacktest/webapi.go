package slacktest

import (
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Call is one Web API request the server received, answered or refused.
type Call struct {
	Method string // "chat.postMessage", …; "upload" for the file upload URL, "response_url" for response URLs
	At     time.Time
	// Params holds form parameters (the token removed); Body holds the
	// request body of JSON calls.
	Params url.Values
	Body   json.RawMessage

	Channel  string
	TS       string
	ThreadTS string
	Text     string
	Blocks   json.RawMessage // the blocks JSON as sent, nil if none

	Status int    // HTTP status of the answer
	Error  string // Slack error code of the answer, "" when ok
}

// rateLimit is a pending 429 injection.
type rateLimit struct {
	n          int
	retryAfter time.Duration
}

// request is a decoded Web API call.
type request struct {
	token  string
	params url.Values      // form calls
	body   json.RawMessage // JSON calls
	json   map[string]any  // decoded JSON body
}

// get returns a parameter from the form or the top level of the JSON body.
func (r *request) get(name string) string {
	if r.json != nil {
		switch v := r.json[name].(type) {
		case string:
			return v
		case nil:
			return ""
		default:
			b, _ := json.Marshal(v)
			return string(b)
		}
	}
	return r.params.Get(name)
}

// result is what a method handler answers: an error code, or the fields
// of an ok answer.
type result struct {
	errCode string
	fields  map[string]any
}

func ok(fields map[string]any) result { return result{fields: fields} }
func fail(code string) result         { return result{errCode: code} }

// RateLimitNext makes the next n calls of a Web API method fail with HTTP
// 429 and a Retry-After of retryAfter (rounded up to whole seconds).
func (s *Server) RateLimitNext(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = &rateLimit{n: n, retryAfter: retryAfter}
}

// Calls returns every Web API call received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// serveAPI answers POST/GET /api/{method}.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	req, err := decodeRequest(r)
	call := Call{Method: method, At: time.Now(), Params: req.params, Body: req.body}
	call.Channel = req.get("channel")
	if call.Channel == "" {
		call.Channel = req.get("channel_id")
	}
	call.TS, call.ThreadTS, call.Text = req.get("ts"), req.get("thread_ts"), req.get("text")
	if b := req.get("blocks"); b != "" {
		call.Blocks = json.RawMessage(b)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	if lim := s.limits[method]; lim != nil && lim.n > 0 {
		lim.n--
		secs := int(math.Ceil(lim.retryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		call.Status, call.Error = http.StatusTooManyRequests, "ratelimited"
		s.calls = append(s.calls, call)
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
		return
	}
	var res result
	switch {
	case err != nil:
		res = fail("invalid_arguments")
	default:
		res = s.authorize(method, req.token)
		if res.errCode == "" {
			res = s.dispatchLocked(method, req)
		}
	}
	call.Status, call.Error = http.StatusOK, res.errCode
	s.calls = append(s.calls, call)
	body := map[string]any{"ok": res.errCode == ""}
	if res.errCode != "" {
		body["error"] = res.errCode
	}
	for k, v := range res.fields {
		body[k] = v
	}
	writeJSON(w, http.StatusOK, body)
}

// authorize checks the token: the app token only opens connections, the
// bot token does everything else.
func (s *Server) authorize(method, token string) result {
	switch {
	case token == "":
		return fail("not_authed")
	case token != s.appToken && token != s.botToken:
		return fail("invalid_auth")
	case method == "apps.connections.open" && token != s.appToken:
		return fail("not_allowed_token_type")
	case method != "apps.connections.open" && token != s.botToken:
		return fail("not_allowed_token_type")
	}
	return result{}
}

// dispatchLocked runs a method; s.mu must be held.
func (s *Server) dispatchLocked(method string, req *request) result {
	switch method {
	case "auth.test":
		return ok(map[string]any{
			"url": "https://" + TeamDomain + ".slack.com/", "team": "cpbot test", "user": "cpbot",
			"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID,
		})
	case "apps.connections.open":
		ticket := randomHex(16)
		s.tickets[ticket] = true
		u := "ws" + strings.TrimPrefix(s.httpSrv.URL, "http") + "/link/?ticket=" + ticket + "&app_id=" + AppID
		return ok(map[string]any{"url": u})
	case "chat.postMessage":
		return s.postMessageLocked(req)
	case "chat.update":
		return s.updateMessageLocked(req)
	case "chat.postEphemeral":
		return s.postEphemeralLocked(req)
	case "chat.delete":
		return s.deleteMessageLocked(req)
	case "files.getUploadURLExternal":
		return s.getUploadURLLocked(req)
	case "files.completeUploadExternal":
		return s.completeUploadLocked(req)
	case "views.publish":
		return s.publishViewLocked(req)
	default:
		return fail("unknown_method")
	}
}

// decodeRequest reads the token and parameters of a form or JSON call.
func decodeRequest(r *http.Request) (*request, error) {
	req := &request{params: url.Values{}}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		req.token = strings.TrimPrefix(h, "Bearer ")
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			return req, err
		}
		req.body = body
		req.json = map[string]any{}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req.json); err != nil {
				return req, err
			}
		}
		return req, nil
	}
	if err := r.ParseForm(); err != nil {
		return req, err
	}
	req.params = r.Form
	if t := req.params.Get("token"); t != "" && req.token == "" {
		req.token = t
	}
	req.params.Del("token")
	return req, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
