// Package bot is cpbot's Slack surface: the socket-mode loop, the
// /contourpose command grammar, authorization, Block Kit job cards with
// throttled updates and threaded progress, file upload, and a console
// transport for demo mode. It satisfies jobs.Notifier and never touches
// bbolt or Lambda directly.
package bot
