"""Answers computed in worker processes (CART_ENGINE_PROCESSES, assistant/engine_workers.py): the
same answers as the app's own engine, follow-ups that keep their context whichever worker takes
them, concurrent conversations kept apart, a killed worker that loses no question, and no worker
left behind by an app that was killed. Real engines over the session index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app_server import AppServer, app_env, request
from assistant.engine import Conversation, Engine
from assistant.engine_workers import EngineWorkers
from tests.conftest import PROJECT, subprocess_env

THREAD = ["what is the hcpcs code for abecma", "and carvykti?", "payment limit for that DOS 2/10/26"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone, only not yet reaped
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def engines(index_env):
    with pytest.MonkeyPatch.context() as mp:  # the workers are spawned with this environment
        for k, v in index_env.items():
            mp.setenv(k, v)
        local = Engine(llm=None)
        workers = EngineWorkers(local, 2)
        workers.pids()
        yield local, workers
        workers.shutdown()


def test_workers_answer_as_the_app_engine_does_and_keep_the_thread(engines):
    local, workers = engines
    here, there = Conversation(), Conversation()
    for text in THREAD:
        mine, theirs = local.ask(text, here), workers.ask(text, there)
        assert theirs.text == mine.text and theirs.to_dict()["citations"] == mine.to_dict()["citations"]
    assert "Q2056" in theirs.text.split("\n\n")[0]  # the follow-ups kept Carvykti and the date of service
    assert len(there.turns) == 3 and [q.text for q in there.turns] == [q.text for q in here.turns]


def test_concurrent_conversations_are_kept_apart(engines):
    _local, workers = engines
    products = {"abecma": "Q2055", "carvykti": "Q2056", "tecartus": "Q2053"}

    def thread(name: str) -> list[str]:
        conv = Conversation()
        return [workers.ask(text, conv).text.split("\n\n")[0]
                for text in (f"what is the hcpcs code for {name}", "and its payment limit?", "what modifier goes with it")]

    names = list(products) * 3
    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(thread, names))
    for name, leads in zip(names, results, strict=True):
        assert products[name] in leads[0] and products[name] in leads[1], (name, leads)


def test_a_killed_worker_loses_no_question(engines):
    local, workers = engines
    conv = Conversation()
    workers.ask(THREAD[0], conv)
    for pid in set(workers.pids()):
        os.kill(pid, signal.SIGKILL)
    answer = workers.ask(THREAD[1], conv)  # the pool broke under it: answered by the app's engine
    assert "Q2056" in answer.text.split("\n\n")[0] and len(conv.turns) == 2
    new = set(workers.pids())
    assert new and all(_alive(p) for p in new)
    again = workers.ask("what is the hcpcs code for tecartus", Conversation())
    assert again.text == local.ask("what is the hcpcs code for tecartus", Conversation()).text


def test_workers_exit_when_the_app_is_killed(index_env, tmp_path):
    code = textwrap.dedent("""
        from assistant.engine import Engine
        from assistant.engine_workers import EngineWorkers
        w = EngineWorkers(Engine(llm=None), 2)
        print(" ".join(map(str, set(w.pids()))), flush=True)
        import time; time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT, stdout=subprocess.PIPE, text=True,
                              env=subprocess_env(**index_env))
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "an engine worker outlived the killed app"


def test_the_app_answers_through_its_engine_processes(index_env, tmp_path):
    """app.py as started by default on this machine: CART_ENGINE_PROCESSES left unset."""
    env = app_env(index_env, tmp_path)
    env.pop("CART_ENGINE_PROCESSES", None)
    server = AppServer(env).start()
    try:
        children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
        cores = len(os.sched_getaffinity(0))
        assert len(children) >= (min(cores, 8) if cores > 1 else 0)  # the engine workers (and spawn's resource tracker)
        status, _h, body = request("POST", server.url + "/api/ask", {"question": THREAD[0]})
        assert status == 200
        import json

        conv = json.loads(body)["conversation_id"]
        status, _h, body = request("POST", server.url + "/api/ask", {"question": THREAD[1], "conversation_id": conv})
        assert status == 200 and "Q2056" in json.loads(body)["answer"]["text"].split("\n\n")[0]
    finally:
        server.close()
    deadline = time.monotonic() + 20
    while any(_alive(int(p)) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(int(p)) for p in children), "engine workers outlived the stopped app"
