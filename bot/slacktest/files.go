package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Upload is a file shared with files.completeUploadExternal.
type Upload struct {
	FileID   string
	Filename string
	Title    string
	Bytes    []byte
	Channel  string // "" when completed without a channel (a private file)
	ThreadTS string
	// InitialComment is the text of the sharing message.
	InitialComment string
}

// View is an App Home view published with views.publish.
type View struct {
	ID     string
	UserID string
	Hash   string
	// View is the view JSON as sent (type, blocks, …).
	View json.RawMessage
	At   time.Time
}

// pendingFile is a file between files.getUploadURLExternal and
// files.completeUploadExternal.
type pendingFile struct {
	filename string
	length   int
	bytes    []byte
	uploaded bool
}

// Uploads returns the completed file uploads, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

// Views returns every published view, in order.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]View(nil), s.views...)
}

func (s *Server) getUploadURLLocked(req *request) result {
	filename := req.get("filename")
	length, err := strconv.Atoi(req.get("length"))
	if filename == "" || err != nil || length <= 0 {
		return fail("invalid_arguments")
	}
	id := s.nextIDLocked("F")
	s.pending[id] = &pendingFile{filename: filename, length: length}
	return ok(map[string]any{"upload_url": s.httpSrv.URL + "/upload/" + id, "file_id": id})
}

// serveUpload takes the file's bytes, sent raw or as the "file" part of a
// multipart form, as Slack's upload URL does.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	data, err := readUpload(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	call := Call{Method: "upload", At: time.Now(), Status: http.StatusOK}
	p := s.pending[id]
	switch {
	case r.Method != http.MethodPost:
		call.Status, call.Error = http.StatusMethodNotAllowed, "method_not_allowed"
	case p == nil:
		call.Status, call.Error = http.StatusNotFound, "file_not_found"
	case err != nil:
		call.Status, call.Error = http.StatusBadRequest, "invalid_upload"
	}
	s.calls = append(s.calls, call)
	if call.Error != "" {
		http.Error(w, call.Error, call.Status)
		return
	}
	p.bytes, p.uploaded = data, true
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "OK - %d", len(data))
}

func readUpload(r *http.Request) ([]byte, error) {
	ctype, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body := io.LimitReader(r.Body, 100<<20)
	if !strings.HasPrefix(ctype, "multipart/") {
		return io.ReadAll(body)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("read upload: no file part: %w", err)
		}
		if part.FormName() == "file" {
			return io.ReadAll(part)
		}
	}
}

func (s *Server) completeUploadLocked(req *request) result {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if json.Unmarshal([]byte(req.get("files")), &files) != nil || len(files) == 0 {
		return fail("invalid_arguments")
	}
	channel, threadTS := req.get("channel_id"), req.get("thread_ts")
	if channel == "" {
		if cs := req.get("channels"); cs != "" {
			channel = strings.Split(cs, ",")[0]
		}
	}
	if channel != "" && !isChannelID(channel) {
		return fail("channel_not_found")
	}
	if threadTS != "" && (channel == "" || !s.threadLocked(channel, threadTS)) {
		return fail("invalid_thread_ts")
	}
	for _, f := range files {
		if p := s.pending[f.ID]; p == nil || !p.uploaded {
			return fail("file_not_found")
		}
	}
	var summaries []map[string]any
	var ids []string
	for _, f := range files {
		p := s.pending[f.ID]
		delete(s.pending, f.ID)
		title := f.Title
		if title == "" {
			title = p.filename
		}
		s.uploads = append(s.uploads, Upload{
			FileID: f.ID, Filename: p.filename, Title: title, Bytes: p.bytes,
			Channel: channel, ThreadTS: threadTS, InitialComment: req.get("initial_comment"),
		})
		summaries = append(summaries, map[string]any{"id": f.ID, "title": title})
		ids = append(ids, f.ID)
	}
	if channel != "" {
		s.messages = append(s.messages, &Message{
			Channel: channel, TS: s.nextTSLocked(), ThreadTS: threadTS, User: BotUserID,
			Text: req.get("initial_comment"), Files: ids,
		})
	}
	return ok(map[string]any{"files": summaries})
}

func (s *Server) publishViewLocked(req *request) result {
	var body struct {
		UserID string          `json:"user_id"`
		View   json.RawMessage `json:"view"`
		Hash   string          `json:"hash"`
	}
	if json.Unmarshal(req.body, &body) != nil {
		// Form-encoded calls carry the view as a JSON string.
		body.UserID, body.View, body.Hash = req.get("user_id"), json.RawMessage(req.get("view")), req.get("hash")
	}
	if body.UserID == "" {
		return fail("invalid_arguments")
	}
	var view struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body.View, &view) != nil || view.Type != "home" {
		return fail("invalid_arguments")
	}
	v := View{ID: s.nextIDLocked("V"), UserID: body.UserID, Hash: body.Hash, View: body.View, At: time.Now()}
	s.views = append(s.views, v)
	full := map[string]any{}
	_ = json.Unmarshal(body.View, &full)
	full["id"], full["team_id"], full["app_id"], full["bot_id"] = v.ID, TeamID, AppID, BotID
	full["hash"] = randomHex(8)
	return ok(map[string]any{"view": full})
}
