// Package slacktest is an in-process fake Slack for tests, in the manner of
// net/http/httptest. A Server speaks Socket Mode over a real websocket and
// serves the Web API methods cpbot uses, so the real slack-go client
// (github.com/slack-go/slack and its socketmode package) can be pointed at
// it with slack.OptionAPIURL(srv.URL()+"/api/").
//
// The server delivers slash commands and block actions as Socket Mode
// envelopes, records acks, keeps the state of every channel (messages,
// threads, edits, ephemerals, file uploads, App Home views), and can inject
// 429 rate limits and dropped connections.
//
// Caveats: it is stricter than Slack in places, to catch bugs: channels must
// be ids (C…, G…, D…), a thread_ts must name a message already posted in
// that channel, and only the server's own two tokens are accepted. Files
// are kept in memory; there is no files.info or conversations.* API.
package slacktest
