// Command chgo runs SQL through clickhouse-go v2 over HTTP, the way the Grafana
// ClickHouse plugin opens its connection (database/sql, HTTP protocol, gzip),
// and prints what each query returned as JSON: its columns, its row count,
// which columns hold a value in some row, or the error.
//
// Input (stdin): {"addr", "user", "password", "database", "queries": [{"name", "sql"}]}.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

type request struct {
	Addr     string  `json:"addr"`
	User     string  `json:"user"`
	Password string  `json:"password"`
	Database string  `json:"database"`
	Queries  []query `json:"queries"`
}

type query struct {
	Name string `json:"name"`
	SQL  string `json:"sql"`
}

type answer struct {
	Name     string   `json:"name"`
	Columns  []string `json:"columns"`
	Rows     int      `json:"rows"`
	Filled   []bool   `json:"filled"`
	First    []string `json:"first"`
	Error    string   `json:"error,omitempty"`
	ErrCode  int32    `json:"errorCode,omitempty"`
	Server   string   `json:"server"`
	Timezone string   `json:"timezone"`
}

func filled(value any) bool {
	switch v := value.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case *string:
		return v != nil && *v != ""
	}
	return true
}

func run(ctx context.Context, req request) ([]answer, error) {
	db := clickhouse.OpenDB(&clickhouse.Options{
		Addr:        []string{req.Addr},
		Auth:        clickhouse.Auth{Database: req.Database, Username: req.User, Password: req.Password},
		Protocol:    clickhouse.HTTP,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionGZIP},
		DialTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second,
		Settings:    clickhouse.Settings{},
	})
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	var server, tz string
	if err := db.QueryRowContext(ctx, "SELECT displayName(), timezone()").Scan(&server, &tz); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	answers := make([]answer, 0, len(req.Queries))
	for _, q := range req.Queries {
		a := answer{Name: q.Name, Server: server, Timezone: tz}
		rows, err := db.QueryContext(ctx, q.SQL)
		if err != nil {
			a.Error = err.Error()
			if ex, ok := clickhouseException(err); ok {
				a.ErrCode = ex.Code
			}
			answers = append(answers, a)
			continue
		}
		a.Columns, _ = rows.Columns()
		a.Filled = make([]bool, len(a.Columns))
		values := make([]any, len(a.Columns))
		pointers := make([]any, len(a.Columns))
		for i := range values {
			pointers[i] = &values[i]
		}
		for rows.Next() {
			if err := rows.Scan(pointers...); err != nil {
				a.Error = err.Error()
				break
			}
			if a.Rows == 0 {
				for _, v := range values {
					a.First = append(a.First, fmt.Sprint(v))
				}
			}
			a.Rows++
			for i, v := range values {
				a.Filled[i] = a.Filled[i] || filled(v)
			}
		}
		if err := rows.Err(); err != nil && a.Error == "" {
			a.Error = err.Error()
		}
		rows.Close()
		answers = append(answers, a)
	}
	return answers, nil
}

func clickhouseException(err error) (*clickhouse.Exception, bool) {
	for err != nil {
		if ex, ok := err.(*clickhouse.Exception); ok {
			return ex, true
		}
		unwrapper, ok := err.(interface{ Unwrap() error })
		if !ok {
			return nil, false
		}
		err = unwrapper.Unwrap()
	}
	return nil, false
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "chgo: bad input:", err)
		os.Exit(2)
	}
	answers, err := run(context.Background(), req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chgo:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(answers); err != nil {
		os.Exit(1)
	}
}
