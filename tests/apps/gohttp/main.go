// A Go net/http server for the apps and static suites: serves /data (a
// deterministic 4 MiB body), /hello, and /nil (a handler that dereferences a
// nil pointer and recovers, answering with the recovered panic's message) on
// the address given as the first argument.
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	body := make([]byte, 4<<20)
	for i := range body {
		body[i] = byte(i*7 + i/251)
	}
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go\n")
	})
	http.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	})
	http.HandleFunc("/nil", func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if e := recover(); e != nil {
				fmt.Fprintf(w, "recovered: %v\n", e)
			}
		}()
		var p *struct{ pad [64]byte; x int }
		if r.URL.Query().Get("safe") == "" {
			fmt.Fprintf(w, "read %d\n", p.x)
		}
		fmt.Fprintf(w, "no panic\n")
	})
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
