"""Sharding (exporter.sharding): a stable hash of the target name picks the shard; the shards together
plan every job exactly once; a shard whose jobs read a fact no own job posts gets a fact reader."""

from __future__ import annotations

import copy

import pytest

from collectors import registry
from exporter.config import load_config
from exporter.job_plan import compare, planned_jobs
from exporter.sharding import (
    FactReaderSpec,
    Shard,
    fnv1a_32,
    ordinal_from_hostname,
    shard_of,
)
from tests.conftest import write_config

COLLECTORS = registry.by_name()


def target(name, *roles):
    return {"name": name, "host": f"{name}.contoso.com", "roles": list(roles), "credential": "mon"}


# The demo's estate: names as the demo and the simulator's healthy scenario give them.
ESTATE = {
    "credentials": {"mon": {"username": "CONTOSO\\svc", "password_env": "LYNC_OWA_TEST_PASSWORD"}},
    "targets": [
        target("ex01", "exchange_mailbox", "exchange_client_access"),
        target("ex02", "exchange_mailbox", "exchange_client_access"),
        target("fe01", "lync_frontend"),
        target("fe02", "lync_frontend"),
        target("edge01", "lync_edge"),
    ],
}


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


def load(tmp_path, document):
    return load_config(write_config(tmp_path, document), COLLECTORS)


def test_fnv1a_32_matches_the_published_test_vectors():
    # The FNV reference vectors (draft-eastlake-fnv, "FNV-1a 32"): not Python's per-process hash().
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


def test_the_demo_targets_land_where_the_hash_says():
    # FNV-1a 32 of each name, modulo 3, worked out beside the code: edge01 0xb74c3d4f, ex01 0x15c5469b,
    # ex02 0x16c5482e, fe01 0x09764447, fe02 0x0a7645da.
    assert {name: shard_of(name, 3) for name in ("edge01", "ex01", "ex02", "fe01", "fe02")} == {
        "edge01": 0, "ex01": 2, "ex02": 1, "fe01": 2, "fe02": 1}
    assert shard_of("ex01", 1) == 0


def test_a_thousand_names_split_into_disjoint_complete_non_empty_shards():
    names = [f"mbx{i:04d}.contoso.com" for i in range(1000)]
    for total in (1, 2, 3, 7):
        shares = [{n for n in names if Shard(i, total).owns(n)} for i in range(total)]
        assert set().union(*shares) == set(names)
        assert sum(len(share) for share in shares) == len(names)  # no name in two shards
        assert all(shares)


@pytest.mark.parametrize("hostname, ordinal", [
    ("lync-owa-exporter-0", 0),
    ("lync-owa-exporter-12", 12),
    ("lync-owa-exporter-2.lync-owa-exporter.monitoring.svc.cluster.local", 2),
])
def test_the_ordinal_comes_from_a_statefulset_pod_host_name(hostname, ordinal):
    assert ordinal_from_hostname(hostname) == ordinal


@pytest.mark.parametrize("hostname", ["vm", "lync-owa-exporter", "exporter-2a", ""])
def test_a_host_name_without_an_ordinal_is_refused_by_name(hostname):
    with pytest.raises(ValueError, match=f"host name {hostname!r} does not end in -<number>"):
        ordinal_from_hostname(hostname)


@pytest.mark.parametrize("index, total, message", [
    (3, 3, "--shard 3: must be from 0 to 2"),
    (-1, 3, "--shard -1: must be from 0 to 2"),
    (0, 0, "--total-shards 0: must be 1 or more"),
])
def test_impossible_shards_are_refused(index, total, message):
    with pytest.raises(ValueError, match=message):
        Shard(index, total)


def test_three_shards_plan_every_job_exactly_once(tmp_path):
    config = load(tmp_path, ESTATE)
    everything = planned_jobs(config, COLLECTORS)
    plans = [planned_jobs(config, COLLECTORS, shard=Shard(i, 3)) for i in range(3)]
    own = [[job.id for job in plan if not isinstance(job, FactReaderSpec)] for plan in plans]
    assert sorted(job_id for share in own for job_id in share) == sorted(job.id for job in everything)
    # Every job of a target sits in its target's shard: all of a target's series come from one exporter.
    assert {job_id.split("/")[1] for job_id in own[0]} == {"edge01"}
    assert {job_id.split("/")[1] for job_id in own[1]} == {"ex02", "fe02"}
    assert {job_id.split("/")[1] for job_id in own[2]} == {"ex01", "fe01"}


def fact_readers(plan):
    return [job.id for job in plan if isinstance(job, FactReaderSpec)]


def test_a_shard_reads_the_facts_its_jobs_need_from_the_first_target_that_posts_them(tmp_path):
    config = load(tmp_path, ESTATE)
    everything = planned_jobs(config, COLLECTORS)
    posted_anywhere = set().union(*(COLLECTORS[j.collector].facts_posted(j.target.roles) for j in everything))
    for i in range(3):
        shard = Shard(i, 3)
        plan = planned_jobs(config, COLLECTORS, shard=shard)
        posted = set().union(*(COLLECTORS[j.collector].facts_posted(j.target.roles) for j in plan))
        read = set().union(*(COLLECTORS[j.collector].facts_read(j.target.roles, j.settings) for j in plan
                             if not isinstance(j, FactReaderSpec)))
        assert read & posted_anywhere <= posted, f"{shard}: a fact its jobs read is posted by none of its jobs"
        assert not any(shard.owns(j.target.name) for j in plan if isinstance(j, FactReaderSpec))
    # Shard 0 holds only the Edge: it needs the CMS copy a front end reads; fe01 is the first front end.
    assert "edge_hosting_provider/fe01" in fact_readers(planned_jobs(config, COLLECTORS, shard=Shard(0, 3)))


def test_each_kind_of_fact_reader(tmp_path):
    # Two shards: ex01 (0x15c5469b) hashes to 1, fe02 (0x0a7645da) to 0, so each shard lacks a producer.
    document = copy.deepcopy(ESTATE)
    document["targets"] = [target("ex01", "exchange_mailbox", "exchange_client_access"),
                           target("fe02", "lync_frontend")]
    config = load(tmp_path, document)
    readers = [fact_readers(planned_jobs(config, COLLECTORS, shard=Shard(i, 2))) for i in range(2)]
    # The front end's shard needs the SipName UM servers an Exchange client access server posts; the
    # Exchange shard needs the OWA trusted pools (im_certificate) a front end's lync_topology posts.
    assert "exchange_topology/ex01" in readers[0]
    assert "lync_topology/fe02" in readers[1]
    assert all(job_id.endswith("/ex01") for job_id in readers[0])
    assert all(job_id.endswith("/fe02") for job_id in readers[1])


def test_no_um_server_reader_when_the_settings_name_them(tmp_path):
    document = copy.deepcopy(ESTATE)
    document["targets"] = [target("ex01", "exchange_client_access"), target("fe02", "lync_frontend")]
    document["collectors"] = {"lync_topology": {"sipname_um_servers": ["um01.contoso.com"]}}
    config = load(tmp_path, document)
    assert "exchange_topology/ex01" not in fact_readers(planned_jobs(config, COLLECTORS, shard=Shard(0, 2)))


class Routes:
    """A collector's fact routes alone, for the planner's logic without the real collectors."""

    def __init__(self, posts=(), reads=()):
        self.posts, self.reads = frozenset(posts), frozenset(reads)

    def facts_posted(self, roles):
        return self.posts

    def facts_read(self, roles, settings):
        return self.reads


def test_one_reader_per_source_job_even_for_several_facts(tmp_path):
    from exporter.config import JobSpec

    config = load(tmp_path, ESTATE)
    by_name = {t.name: t for t in config.targets}
    routes = {"producer": Routes(posts={"a", "b"}), "consumer": Routes(reads={"a", "b"}), "other": Routes()}
    jobs = [JobSpec("producer", by_name["fe01"], None), JobSpec("producer", by_name["fe02"], None),
            JobSpec("consumer", by_name["edge01"], None), JobSpec("other", by_name["edge01"], None)]
    from exporter.sharding import shard_jobs

    plan = shard_jobs(jobs, Shard(0, 3), routes)  # edge01 alone in shard 0
    assert [job.id for job in plan] == ["consumer/edge01", "other/edge01", "producer/fe01"]
    assert isinstance(plan[-1], FactReaderSpec)
    assert shard_jobs(jobs, Shard(0, 1), routes) == jobs  # one shard: everything, no reader


def test_a_reader_is_left_out_when_nothing_posts_the_fact(tmp_path):
    document = copy.deepcopy(ESTATE)
    document["targets"] = [target("edge01", "lync_edge"), target("ex01", "exchange_mailbox")]
    config = load(tmp_path, document)
    plans = [planned_jobs(config, COLLECTORS, shard=Shard(i, 3)) for i in range(3)]
    assert not any(isinstance(job, FactReaderSpec) for plan in plans for job in plan)


def test_a_reload_keeps_the_share_and_moves_readers_only(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    shard = Shard(0, 3)
    old = planned_jobs(load(tmp_path / "old", ESTATE), COLLECTORS, shard=shard)
    document = copy.deepcopy(ESTATE)
    # A front end that hashes to shard 0 joins before fe01: shard 0 now posts the CMS copy itself.
    assert shard_of("fe00", 3) == 0  # fnv1a_32("fe00") = 0x087642b4
    document["targets"].insert(0, target("fe00", "lync_frontend"))
    new = planned_jobs(load(tmp_path / "new", document), COLLECTORS, shard=shard)
    change = compare({job.id: job for job in old}, new)
    assert "edge_hosting_provider/fe01" in change.removed  # that reader is no longer needed
    assert all(job_id.endswith("/fe01") for job_id in change.removed)  # readers only: no own job left
    assert {job.id for job in new if job.target.name == "fe00"} <= {job.id for job in change.added}
    # fe00's lync_topology needs the SipName UM servers: ex01, the first Exchange server, posts them.
    assert "exchange_topology/ex01" in fact_readers(new)
    assert sorted(change.unchanged) == sorted(job.id for job in old if job.target.name == "edge01")


def test_no_second_reader_for_a_fact_a_first_reader_already_posts(tmp_path):
    from exporter.config import JobSpec
    from exporter.sharding import shard_jobs

    config = load(tmp_path, ESTATE)
    by_name = {t.name: t for t in config.targets}
    routes = {"only_b": Routes(posts={"b"}), "a_and_b": Routes(posts={"a", "b"}), "consumer": Routes(reads={"a", "b"})}
    # ex02 (shard 1) is the first to post b, but the reader of a on fe01 (shard 2) posts b as well.
    jobs = [JobSpec("only_b", by_name["ex02"], None), JobSpec("a_and_b", by_name["fe01"], None),
            JobSpec("consumer", by_name["edge01"], None)]
    assert [job.id for job in shard_jobs(jobs, Shard(0, 3), routes)] == ["consumer/edge01", "a_and_b/fe01"]
