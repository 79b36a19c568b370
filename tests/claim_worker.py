"""A separate process that claims one ticket from many threads at once, for the claim race test.

    python -m tests.claim_worker DATABASE_URL TICKET_ID AGENT_PREFIX THREADS

Prints one JSON object per attempt: the agent, the outcome and the owner seen.
"""

import json
import sys
import threading

from store.claims import claim
from store.db import make_engine, make_session_factory


def main() -> None:
    url, ticket_id, prefix, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    session_factory = make_session_factory(make_engine(url))
    start = threading.Barrier(threads)
    lock = threading.Lock()

    def attempt(agent: str) -> None:
        start.wait()
        with session_factory.begin() as session:
            result = claim(session, ticket_id, agent)
        with lock:
            print(json.dumps({"agent": agent, "outcome": result.outcome, "owner": result.owner}))

    workers = [
        threading.Thread(target=attempt, args=(f"{prefix}-{index}",)) for index in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
