// A small web app for minicloud: answers / and /healthz, counts visits in its storage.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
)

const counter = "/data/visits"

var mu sync.Mutex

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		old, _ := os.ReadFile(counter)
		visits, _ := strconv.Atoi(strings.TrimSpace(string(old)))
		visits++
		if err := os.WriteFile(counter, []byte(strconv.Itoa(visits)), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "Hello from %s: visit %d\n", os.Getenv("APP_NAME"), visits)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
