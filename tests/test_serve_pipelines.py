"""Pipelines run by a real ``vidpipe serve`` process, driven over HTTP: created from a spec,
a camera (the test RTSP server) added beside a realtime file, its results read by polling
and by Server-Sent Events, removed (its end record follows its last result), paused and
resumed, terminated; ``vidpipe streams``; bad requests; ``--state`` across a restart."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
import yaml

from tests.conftest import free_port
from tests.serve_pipelines_helpers import END, EventReader, Poller, ended, open_sockets, results_of, scraped, settles
from tests.serve_process import REPO, ServeProcess
from tests.stream_helpers import camera, consecutive, rtsp

CONFIG = {"backend": {"intra_op_threads": 1}}


def spec(*streams: dict) -> dict:
    return {"name": "site", "model": {"path": "shapes-yolov8seg", "intra_op_threads": 1}, "streams": list(streams)}


def vidpipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=60)


def test_a_camera_added_over_http_streams_results_then_its_end(tmp_path, clips, rtsp_server):
    # A camera and a realtime file run; a second camera joins over HTTP, then leaves.
    # (What the others feel meanwhile, and how soon it delivers: `vidpipe bench streams-http`.)
    gate, cam = rtsp_server(fps=5), rtsp_server(fps=5)
    with ServeProcess(tmp_path, CONFIG) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        out = tmp_path / "out.jsonl"  # a file sink works as in vidpipe run
        r = http.post("/pipelines", json={**spec(camera("yard", clips["paced"]), rtsp("gate", gate.url)),
                                          "sinks": [{"type": "jsonl", "path": str(out)}]})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert http.get("/pipelines").json()["pipelines"] == [{"id": pid, "name": "site", "state": "running",
                                                               "streams": ["gate", "yard"]}]
        events = EventReader(f"{server.url}/pipelines/{pid}/events").start()
        poll = Poller(http, pid)
        poll.until(lambda recs: results_of(recs, "yard") >= 3 and results_of(recs, "gate") >= 3, "yard's and gate's results")
        assert server.proc is not None
        threads, sockets = scraped(http)['vidpipe_serve_threads{kind="vidpipe"}'], open_sockets(server.proc.pid)
        r = http.post(f"/pipelines/{pid}/streams", json=rtsp("door", cam.url))
        assert r.status_code == 201 and r.json()["id"] == "door", r.text
        poll.until(lambda recs: results_of(recs, "door") >= 3, "door's results")
        events.wait(lambda ev: results_of([d for e, d in ev if e == "result"], "door") >= 1, "door's results as events")
        status = http.get(f"/pipelines/{pid}").json()
        assert status["state"] == "running" and set(status["streams"]) == {"yard", "gate", "door"}
        for line in status["streams"].values():
            assert {"state", "fps", "latency_ms", "drops", "results"} <= set(line) and line["results"] >= 1
        assert status["streams"]["door"]["state"] == "streaming"
        metrics = scraped(http)
        assert metrics[f'vidpipe_pipeline_stream_results_total{{pipeline="{pid}",stream="door"}}'] >= 1
        assert metrics['vidpipe_serve_threads{kind="vidpipe"}'] > threads and open_sockets(server.proc.pid) > sockets
        listed = vidpipe("streams", "list", "--server", server.url)
        assert listed.returncode == 0 and " door " in listed.stdout and " yard " in listed.stdout, listed
        removed = vidpipe("streams", "remove", "door", "--server", server.url)  # the only pipeline: no --pipeline
        assert removed.returncode == 0 and f"{pid}  door removed" in removed.stdout, removed
        poll.until(lambda recs: ended(recs, "door"), "door's end record")
        door = poll.of("door")
        assert door[-1]["schema"] == END and door[-1]["reason"] == "removed", "its end follows its last result"
        assert all(r["schema"] == "vidpipe.result/1" for r in door[:-1])
        events.wait(lambda ev: ("end", door[-1]) in ev, "door's end as an event")
        assert http.get(f"/pipelines/{pid}").json()["streams"]["door"]["state"] == "removed"
        yard = [r["frame"] for r in poll.of("yard")]
        assert consecutive(yard), "the file never paused nor lost a frame while the camera came and went"
        # Released in the server: its threads at once, its RTSP socket (and the CLI's connections) once closed.
        assert scraped(http)['vidpipe_serve_threads{kind="vidpipe"}'] == threads
        settles(lambda: open_sockets(server.proc.pid), sockets, "the server's open sockets")
        r = http.post(f"/pipelines/{pid}/streams/yard/pause")
        assert r.status_code == 200 and r.json()["streams"]["yard"]["state"] == "paused"
        r = http.post(f"/pipelines/{pid}/streams/yard/resume")
        assert r.json()["streams"]["yard"]["state"] == "streaming"
        n = results_of(poll.records, "yard")
        poll.until(lambda recs: results_of(recs, "yard") >= n + 3, "yard's results after its resume")
        r = http.delete(f"/pipelines/{pid}")
        assert r.status_code == 200 and r.json()["summary"]["streams"]["door"]["state"] == "removed", r.text
        events.wait(lambda ev: ev[-1][0] == "eof", "the event stream's end")
        assert [e for e, _ in events.events[-2:]] == ["closed", "eof"]
        seen = events.records()  # every record once, in order, the same as polled
        assert [r["seq"] for r in seen] == list(range(1, len(seen) + 1)) and seen[:len(poll.records)] == poll.records
        assert http.get(f"/pipelines/{pid}").status_code == 404
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in written if r["stream"] == "door"] == [r["frame"] for r in door[:-1]]
    assert server.proc is not None and server.proc.returncode == 143, server.log
    assert "Traceback" not in server.log, server.log


def test_fifty_streams_added_and_removed_over_http_leave_nothing_behind(tmp_path, clips):
    # A results buffer that the warm-up fills: its records are bounded memory, not a leak.
    with ServeProcess(tmp_path, {**CONFIG, "pipeline_buffer": 16}) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post("/pipelines", json=spec())
        assert r.status_code == 201, r.text
        pid, poll = r.json()["id"], Poller(http, pid=r.json()["id"])

        def cycle(i: int) -> None:
            sid = f"c{i}"
            assert http.post(f"/pipelines/{pid}/streams", json={"id": sid, "source": {"type": "file", "path": str(clips["short"])}}
                             ).status_code == 201
            if i % 2:
                poll.until(lambda recs: ended(recs, sid), f"{sid}'s end")  # ended by itself, then removed
                assert http.delete(f"/pipelines/{pid}/streams/{sid}").status_code == 200
            else:
                assert http.delete(f"/pipelines/{pid}/streams/{sid}", params={"drain": "false"}).status_code == 200

        for i in range(5):  # warm-up: allocator pools, first-use caches, the server's thread pool
            cycle(i)
        before = scraped(http)
        for i in range(5, 55):
            cycle(i)
        after = scraped(http)
        assert after['vidpipe_serve_threads{kind="vidpipe"}'] == before['vidpipe_serve_threads{kind="vidpipe"}']
        settles(lambda: scraped(http)["process_open_fds"], before["process_open_fds"], "the server's open descriptors")
        grown_mb = (after["process_resident_memory_bytes"] - before["process_resident_memory_bytes"]) / 2**20
        assert grown_mb < 5, f"the server's RSS grew by {grown_mb:.1f} MB over 50 cycles"
        assert http.get(f"/pipelines/{pid}").json()["streams"].keys() <= {f"c{i}" for i in range(55)}
        assert all(results_of(poll.records, f"c{i}") == 3 for i in range(5, 55, 2)), "every frame of the drained ones"
        assert http.delete(f"/pipelines/{pid}").status_code == 200
    assert "Traceback" not in server.log, server.log


def test_bad_requests_are_clear_and_the_running_stream_carries_on(tmp_path, clips):
    with ServeProcess(tmp_path, CONFIG) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        pid = http.post("/pipelines", json=spec(camera("yard", clips["paced"]))).json()["id"]
        poll = Poller(http, pid)
        bad = [
            (http.get("/pipelines/nope"), 404, "no pipeline 'nope'"),
            (http.post("/pipelines/nope/streams", json=camera("x", clips["paced"])), 404, "no pipeline 'nope'"),
            (http.delete(f"/pipelines/{pid}/streams/nope"), 404, "no stream 'nope'"),
            (http.post(f"/pipelines/{pid}/streams/nope/pause"), 404, "no stream 'nope'"),
            (http.post(f"/pipelines/{pid}/streams", json=camera("yard", clips["paced"])), 409, "cannot add stream 'yard'"),
            (http.post("/pipelines", json=spec({"id": "x", "source": {"type": "file"}})), 422, "source.path"),
            (http.post("/pipelines", json={**spec(), "model": {"path": "../../etc/passwd"}}), 422, "ids are never paths"),
            (http.post("/pipelines", json={**spec(), "sinkz": []}), 422, "sinkz"),
            (http.post("/pipelines", content=b"{nope"), 400, "not valid JSON"),
            (http.post(f"/pipelines/{pid}/streams", json={"id": "x", "source": {"type": "file", "path": str(tmp_path / "no.mp4")}}),
             422, "video file not found"),
            (http.get(f"/pipelines/{pid}/results", params={"after": "x"}), 400, "after='x'"),
        ]
        for resp, code, words in bad:
            assert resp.status_code == code and words in resp.json()["message"], (code, words, resp.text)
        # A camera that never answers is added and retried in its own thread; the file runs on.
        r = http.post(f"/pipelines/{pid}/streams", json=rtsp("dead", f"rtsp://127.0.0.1:{free_port()}/cam"))
        assert r.status_code == 201, r.text
        poll.until(lambda recs: results_of(recs, "yard") >= 10, "yard's results beside the dead camera")
        status = http.get(f"/pipelines/{pid}").json()["streams"]
        assert status["dead"]["state"] in ("connecting", "reconnecting") and status["dead"]["results"] == 0
        assert http.delete(f"/pipelines/{pid}/streams/dead", params={"drain": "false"}).json()["summary"]["state"] == "removed"
        cli = vidpipe("streams", "remove", "nope", "--server", server.url, "--pipeline", pid)
        assert cli.returncode == 2 and cli.stderr.startswith("vidpipe: error: streams: ") and "404: " in cli.stderr, cli
        assert http.get("/pipelines").json()["pipelines"][0]["streams"] == ["yard"]
        paused = http.post(f"/pipelines/{pid}/pause").json()
        assert paused["state"] == "paused" and paused["streams"]["yard"]["paused"] is True, paused
        resumed = http.post(f"/pipelines/{pid}/resume").json()
        assert resumed["state"] == "running" and resumed["streams"]["yard"]["paused"] is False, resumed
        n = results_of(poll.records, "yard")
        poll.until(lambda recs: results_of(recs, "yard") >= n + 3, "yard's results after the bad requests")
        # A reader that falls behind a small buffer is told how many records it missed.
        r = http.post("/pipelines", json={"spec": spec(camera("tiny", clips["short"])), "id": "tiny", "buffer_size": 4})
        assert r.status_code == 201 and r.json()["id"] == "tiny", r.text
        assert http.post("/pipelines", json={"spec": spec(), "id": "tiny"}).status_code == 409
        body = {"next": 0}
        for _ in range(20):  # long polls (each answers once a record exists) until 6 records exist
            body = http.get("/pipelines/tiny/results", params={"after": body["next"], "wait": 5}).json()
            if body["next"] >= 6:
                break
        assert body["next"] >= 6, body
        body = http.get("/pipelines/tiny/results", params={"after": 0}).json()
        assert len(body["records"]) == 4 and body["dropped"] == body["records"][0]["seq"] - 1 > 0, body
        assert body["next"] == body["records"][-1]["seq"]


def test_a_server_restarted_with_state_restores_its_pipelines(tmp_path, clips):
    state, doomed = tmp_path / "state.json", tmp_path / "doomed.mp4"
    doomed.write_bytes(clips["short"].read_bytes())
    with ServeProcess(tmp_path, CONFIG, args=("--state", str(state))) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        pid = http.post("/pipelines", json=spec(camera("yard", clips["paced"]))).json()["id"]
        as_yaml = yaml.safe_dump({"spec": spec(camera("cam", doomed)), "id": "doomed"})  # YAML by its content type
        assert http.post("/pipelines", content=as_yaml, headers={"Content-Type": "application/yaml"}).status_code == 201
        assert http.post(f"/pipelines/{pid}/streams", json=camera("gate", clips["paced"])).status_code == 201
        assert http.post(f"/pipelines/{pid}/streams/gate/pause").status_code == 200
        events = EventReader(f"{server.url}/pipelines/{pid}/events").start()
        events.wait(lambda ev: len(ev) >= 1, "a first event")
    # SIGTERM with an event stream open: the stream is closed, the server stops and keeps the state.
    assert server.proc is not None and server.proc.returncode == 143, server.log
    events.wait(lambda ev: ev[-1][0] == "eof", "the event stream's end at the server's stop")
    assert events.events[-2][0] == "closed"
    doomed.unlink()  # this one cannot come back: it is listed with why, kept in the file, and can be forgotten
    saved = json.loads(state.read_text())["pipelines"]
    assert [p["id"] for p in saved] == [pid, "doomed"] and saved[0]["paused_streams"] == ["gate"]
    assert [s["id"] for s in saved[0]["spec"]["streams"]] == ["yard", "gate"]
    with ServeProcess(tmp_path, CONFIG, args=("--state", str(state))) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        listed = http.get("/pipelines").json()["pipelines"]
        assert listed[0] == {"id": pid, "name": "site", "state": "running", "streams": ["gate", "yard"]}
        assert listed[1]["id"] == "doomed" and listed[1]["state"] == "not restored" and "doomed.mp4" in listed[1]["error"]
        assert "not restored" in http.get("/pipelines/doomed").json()["message"]
        assert [p["id"] for p in json.loads(state.read_text())["pipelines"]] == [pid, "doomed"]
        assert http.delete("/pipelines/doomed").status_code == 200
        assert http.get(f"/pipelines/{pid}").json()["streams"]["gate"]["state"] == "paused"
        Poller(http, pid).until(lambda recs: results_of(recs, "yard") >= 3, "the restored pipeline's results")
        assert http.delete(f"/pipelines/{pid}").status_code == 200
    assert json.loads(state.read_text())["pipelines"] == []


@pytest.mark.parametrize(("content", "words"), [("{nope", "not readable as JSON"),
                                               ('{"pipelines": 3}', "not a vidpipe.serve-state/1 file")])
def test_a_bad_state_file_is_one_line_and_exit_2(tmp_path, content, words):
    state = tmp_path / "state.json"
    state.write_text(content)
    proc = vidpipe("serve", "--port", "0", "--state", str(state))
    assert proc.returncode == 2 and proc.stderr.startswith(f"vidpipe: error: serve: --state {state}: {words}"), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert state.read_text() == content  # left as it was
