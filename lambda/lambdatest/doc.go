// Package lambdatest provides an in-process fake Lambda Cloud for tests and
// for the bot's demo mode, in the manner of net/http/httptest. Its API follows
// Lambda's OpenAPI document; its instances can be backed by simulated SSH
// hosts on loopback addresses that run a stand-in ContourPose trainer.
package lambdatest
