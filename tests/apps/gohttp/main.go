// A Go net/http server for the apps suite: serves /data (a deterministic
// 4 MiB body) and /hello on the address given as the first argument.
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
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
