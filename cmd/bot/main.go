// Command bot runs cpbot, the Slack bot that trains ContourPose models on
// Lambda Cloud GPUs.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	demo := flag.Bool("demo", false, "run against an in-process fake cloud with a console transport")
	flag.Parse()
	if *demo {
		fmt.Fprintln(os.Stderr, "cpbot: demo mode is not built yet")
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "cpbot: not built yet")
	os.Exit(2)
}
