"""Scenario loading: bad input is refused with the file, field path and reason.

Every bad case writes a YAML file into ``tmp_path``, loads it by path and
checks the `ScenarioError`: ``err.source`` is the file, ``err.field`` the
exact field path, ``err.reason`` says why (and shows the bad value where the
loader reports one), and ``str(err)`` carries all three.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from importlib import resources
from pathlib import Path

import pytest
import yaml

import scenarios
from scenarios import ScenarioError, load_scenario, with_overrides

# ---------------------------------------------------------------- helpers


def _base() -> dict:
    """A valid two-node scenario; each test breaks one thing in a copy."""
    return {
        "name": "two",
        "bandwidth_model": "transfer",
        "token_equivalent_bits": 200,
        "nodes": {
            "A": {"name": "node A", "lat": 0.0, "lon": 0.0, "utc_offset_h": 0},
            "B": {"name": "node B", "lat": 0.0, "lon": 1.0, "utc_offset_h": 0},
        },
        "asset_types": {"g": {"tokens_per_s_per_gpu": {"chat": 1000}}},
        "assets": [
            {
                "node": "A",
                "type": "g",
                "gpus": 2000,
                "cost_usd_per_gpu_hour": 2.0,
                "owner": "pa",
            },
            {
                "node": "B",
                "type": "g",
                "gpus": 1000,
                "cost_usd_per_gpu_hour": 3.0,
                "owner": "pb",
            },
        ],
        "links": [{"a": "A", "b": "B", "capacity_gbps": 0.1, "latency_ms": 10}],
        "workloads": {"chat": {"latency_limit_ms": 100, "bits_per_token": 100}},
        "demand": [{"node": "B", "workload": "chat", "tokens_per_s": 1.5e6}],
    }


# The same scenario as `_base`, as a file would be written by hand; tests that
# need YAML syntax (exponents, duplicate keys, yes/no) edit this text.
_BASE_YAML = """\
name: two
bandwidth_model: transfer
token_equivalent_bits: 200
nodes:
  A: {name: node A, lat: 0.0, lon: 0.0}
  B: {name: node B, lat: 0.0, lon: 1.0}
asset_types:
  g: {tokens_per_s_per_gpu: {chat: 1000}}
assets:
  - node: A
    type: g
    gpus: 2000
    cost_usd_per_gpu_hour: 2.0
    owner: pa
  - node: B
    type: g
    gpus: 1000
    cost_usd_per_gpu_hour: 3.0
    owner: pb
links:
  - a: A
    b: B
    capacity_gbps: 0.1
    latency_ms: 10
workloads:
  chat: {latency_limit_ms: 100, bits_per_token: 100}
demand:
  - node: B
    workload: chat
    tokens_per_s: 1500000
"""


def _edit(text: str, old: str, new: str) -> str:
    """Replace one exact, unique piece of the YAML text."""
    assert text.count(old) == 1, f"{old!r} is not unique in the YAML"
    return text.replace(old, new)


def _line_of(text: str, start: str) -> int:
    """1-based number of the only line that starts with ``start``."""
    found = [
        i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(start)
    ]
    assert len(found) == 1, found
    return found[0]


def _write(tmp_path: Path, data, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _write_text(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path, field: str, *words: str) -> ScenarioError:
    """Load ``path``; it must fail at ``field`` with every word in the reason."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert err.source == str(path)
    assert err.field == field
    for word in words:
        assert word in err.reason, f"{word!r} not in reason {err.reason!r}"
    message = str(err)
    assert str(path) in message
    assert field in message
    assert err.reason in message
    return err


def _refused_data(tmp_path: Path, data, field: str, *words: str) -> ScenarioError:
    return _refused(_write(tmp_path, data), field, *words)


def test_base_scenario_is_valid(tmp_path):
    """The starting point of every bad case loads (so each case breaks one thing)."""
    sc = load_scenario(_write(tmp_path, _base()))
    assert sc.name == "two"
    assert set(sc.nodes) == {"A", "B"}
    assert [a.id for a in sc.assets] == ["A/g", "B/g"]
    assert [link.id for link in sc.links] == ["A-B"]
    assert sc.source == str(tmp_path / "scenario.yaml")


# ---------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("section", "index", "key", "field"),
    [
        ("assets", 0, "node", "assets[0].node"),
        ("assets", 1, "node", "assets[1].node"),
        ("links", 0, "a", "links[0].a"),
        ("links", 0, "b", "links[0].b"),
        ("demand", 0, "node", "demand[0].node"),
    ],
)
def test_unknown_node(tmp_path, section, index, key, field):
    data = _base()
    data[section][index][key] = "ZZ"
    _refused_data(tmp_path, data, field, "unknown", "'ZZ'")


def test_unknown_asset_type(tmp_path):
    data = _base()
    data["assets"][1]["type"] = "h100"
    _refused_data(tmp_path, data, "assets[1].type", "unknown", "'h100'")


def test_unknown_workload_in_demand(tmp_path):
    data = _base()
    data["demand"][0]["workload"] = "video"
    _refused_data(tmp_path, data, "demand[0].workload", "unknown", "'video'")


def test_unknown_workload_in_throughput(tmp_path):
    data = _base()
    data["asset_types"]["g"]["tokens_per_s_per_gpu"]["video"] = 50
    _refused_data(
        tmp_path,
        data,
        "asset_types.g.tokens_per_s_per_gpu.video",
        "unknown workload",
        "'video'",
    )


def test_asset_type_missing_throughput_for_a_workload(tmp_path):
    data = _base()
    data["workloads"]["code"] = {"latency_limit_ms": 50, "bits_per_token": 800}
    _refused_data(tmp_path, data, "asset_types.g.tokens_per_s_per_gpu.code", "missing")


@pytest.mark.parametrize("value", [0, -5, -0.5])
def test_non_positive_throughput(tmp_path, value):
    data = _base()
    data["asset_types"]["g"]["tokens_per_s_per_gpu"]["chat"] = value
    _refused_data(
        tmp_path,
        data,
        "asset_types.g.tokens_per_s_per_gpu.chat",
        "> 0",
        repr(value),
    )


# ---------------------------------------------------------------- bounds


def test_negative_capacity(tmp_path):
    data = _base()
    data["links"][0]["capacity_gbps"] = -1
    _refused_data(tmp_path, data, "links[0].capacity_gbps", ">= 0", "-1")


def test_negative_latency(tmp_path):
    data = _base()
    data["links"][0]["latency_ms"] = -2.5
    _refused_data(tmp_path, data, "links[0].latency_ms", ">= 0", "-2.5")


def test_negative_transfer_charge(tmp_path):
    data = _base()
    data["links"][0]["transfer_usd_per_gb"] = -0.01
    _refused_data(tmp_path, data, "links[0].transfer_usd_per_gb", ">= 0", "-0.01")


def test_negative_demand(tmp_path):
    data = _base()
    data["demand"][0]["tokens_per_s"] = -1000
    _refused_data(tmp_path, data, "demand[0].tokens_per_s", ">= 0", "-1000")


def test_negative_demand_written_with_exponent(tmp_path):
    """-1e6 unquoted is a number (and negative), not the text '-1e6'."""
    text = _edit(_BASE_YAML, "tokens_per_s: 1500000", "tokens_per_s: -1e6")
    _refused(_write_text(tmp_path, text), "demand[0].tokens_per_s", ">= 0", "-1")


def test_negative_bid_quantity(tmp_path):
    data = _base()
    data["demand"][0]["bids"] = [{"tokens_per_s": -5, "value_usd_per_mtok": 4.0}]
    _refused_data(tmp_path, data, "demand[0].bids[0].tokens_per_s", ">= 0", "-5")


def test_negative_gpus(tmp_path):
    data = _base()
    data["assets"][0]["gpus"] = -10
    _refused_data(tmp_path, data, "assets[0].gpus", ">= 0", "-10")


def test_zero_bits_per_token(tmp_path):
    data = _base()
    data["workloads"]["chat"]["bits_per_token"] = 0
    _refused_data(tmp_path, data, "workloads.chat.bits_per_token", "> 0", "0")


def test_infinite_number(tmp_path):
    data = _base()
    data["links"][0]["capacity_gbps"] = math.inf
    _refused_data(tmp_path, data, "links[0].capacity_gbps", "finite")


# ---------------------------------------------------------------- duplicates


def test_duplicate_node_id_as_duplicate_yaml_key(tmp_path):
    text = _edit(
        _BASE_YAML,
        "  B: {name: node B, lat: 0.0, lon: 1.0}\n",
        "  B: {name: node B, lat: 0.0, lon: 1.0}\n"
        "  A: {name: node A again, lat: 1.0, lon: 0.0}\n",
    )
    line = _line_of(text, "  A: {name: node A again")
    _refused(_write_text(tmp_path, text), f"line {line}", "duplicate", "'A'")


def test_duplicate_key_inside_an_entry(tmp_path):
    text = _edit(
        _BASE_YAML,
        "    latency_ms: 10\n",
        "    latency_ms: 10\n    capacity_gbps: 2\n",
    )
    line = _line_of(text, "    capacity_gbps: 2")
    path = _write_text(tmp_path, text)
    _refused(path, f"line {line}", "duplicate", "'capacity_gbps'")


def test_duplicate_asset_id_by_default(tmp_path):
    """Two pools of the same type at one node both default to "A/g"."""
    data = _base()
    data["assets"].append(copy.deepcopy(data["assets"][0]))
    _refused_data(tmp_path, data, "assets[2].id", "duplicate", "'A/g'")


def test_duplicate_asset_id_explicit(tmp_path):
    data = _base()
    data["assets"][0]["id"] = "pool"
    data["assets"][1]["id"] = "pool"
    _refused_data(tmp_path, data, "assets[1].id", "duplicate", "'pool'")


def test_duplicate_link_id_explicit(tmp_path):
    data = _base()
    data["links"].append({**data["links"][0], "id": "A-B"})
    _refused_data(tmp_path, data, "links[1].id", "duplicate", "'A-B'")


def test_duplicate_demand_same_node_and_workload(tmp_path):
    data = _base()
    data["demand"].append({"node": "B", "workload": "chat", "tokens_per_s": 10})
    _refused_data(tmp_path, data, "demand[1]", "duplicate", "'chat'", "'B'")


# ---------------------------------------------------------------- types


def test_text_where_number_required(tmp_path):
    data = _base()
    data["assets"][0]["gpus"] = "many"
    _refused_data(tmp_path, data, "assets[0].gpus", "number", "'many'")


def test_quoted_number_is_text(tmp_path):
    data = _base()
    data["links"][0]["capacity_gbps"] = "100"
    _refused_data(tmp_path, data, "links[0].capacity_gbps", "number", "'100'")


def test_list_where_mapping_required(tmp_path):
    data = _base()
    data["nodes"] = ["A", "B"]
    _refused_data(tmp_path, data, "nodes", "mapping", "list")


def test_list_where_mapping_required_nested(tmp_path):
    data = _base()
    data["asset_types"]["g"]["tokens_per_s_per_gpu"] = [1000]
    _refused_data(tmp_path, data, "asset_types.g.tokens_per_s_per_gpu", "mapping")


def test_mapping_where_list_required(tmp_path):
    data = _base()
    data["assets"] = {"A": data["assets"][0]}
    _refused_data(tmp_path, data, "assets", "list", "mapping")


@pytest.mark.parametrize(
    ("section", "index", "key", "field"),
    [
        ("links", 0, "capacity_gbps", "links[0].capacity_gbps"),
        ("assets", 0, "gpus", "assets[0].gpus"),
        ("demand", 0, "tokens_per_s", "demand[0].tokens_per_s"),
    ],
)
def test_boolean_as_number(tmp_path, section, index, key, field):
    data = _base()
    data[section][index][key] = True
    _refused_data(tmp_path, data, field, "number", "boolean", "True")


def test_yaml_yes_is_a_boolean_not_a_number(tmp_path):
    text = _edit(_BASE_YAML, "latency_ms: 10", "latency_ms: yes")
    _refused(_write_text(tmp_path, text), "links[0].latency_ms", "number", "boolean")


def test_list_where_node_id_required(tmp_path):
    """A list is no node id: refused as a ScenarioError, not a TypeError."""
    data = _base()
    data["assets"][0]["node"] = ["A"]
    _refused_data(tmp_path, data, "assets[0].node", "['A']")


def test_mapping_where_workload_id_required(tmp_path):
    data = _base()
    data["demand"][0]["workload"] = {"chat": 1}
    _refused_data(tmp_path, data, "demand[0].workload", "chat")


def test_missing_required_field(tmp_path):
    data = _base()
    del data["assets"][1]["cost_usd_per_gpu_hour"]
    _refused_data(tmp_path, data, "assets[1].cost_usd_per_gpu_hour", "missing")


@pytest.mark.parametrize("owner", ["+e5", ".e5", "-e3"])
def test_text_that_looks_like_an_exponent_is_not_a_crash(tmp_path, owner):
    """'+e5' is no number in YAML; it must not crash the number reader.

    Either it is read as text (a valid owner name) or refused as a
    ScenarioError; a bare ValueError from the YAML layer is a bug.
    """
    text = _edit(_BASE_YAML, "owner: pb", f"owner: {owner}")
    path = _write_text(tmp_path, text)
    try:
        sc = load_scenario(path)
    except ScenarioError as err:
        assert err.source == str(path)
    else:
        assert sc.assets[1].owner == owner


# ---------------------------------------------------------------- structure


def test_link_from_a_node_to_itself(tmp_path):
    data = _base()
    data["links"][0]["b"] = "A"
    _refused_data(tmp_path, data, "links[0].b", "two nodes", "A-A")


def test_unknown_top_level_field(tmp_path):
    data = _base()
    data["bandwith_model"] = data.pop("bandwidth_model")
    _refused_data(tmp_path, data, "bandwith_model", "unknown field")


def test_unknown_nested_field(tmp_path):
    data = _base()
    data["links"][0]["capacity_gpbs"] = 1
    _refused_data(tmp_path, data, "links[0].capacity_gpbs", "unknown field")


@pytest.mark.parametrize("model", ["tokens", "Transfer", "bits"])
def test_bandwidth_model_not_known(tmp_path, model):
    data = _base()
    data["bandwidth_model"] = model
    _refused_data(tmp_path, data, "bandwidth_model", "transfer", "token", repr(model))


def test_offer_blocks_exceed_gpus(tmp_path):
    data = _base()
    data["assets"][0]["offers"] = [
        {"gpus": 1500, "price_usd_per_gpu_hour": 2.0},
        {"gpus": 1000, "price_usd_per_gpu_hour": 2.5},
    ]
    # 1500 + 1000 = 2500 GPUs offered, the asset has 2000.
    _refused_data(tmp_path, data, "assets[0].offers", "2500", "2000")


def test_offer_blocks_equal_to_gpus_are_accepted(tmp_path):
    data = _base()
    data["assets"][0]["offers"] = [
        {"gpus": 1500, "price_usd_per_gpu_hour": 2.0},
        {"gpus": 500, "price_usd_per_gpu_hour": 2.5},
    ]
    sc = load_scenario(_write(tmp_path, data))
    assert sum(b.gpus for b in sc.assets[0].offers) == 2000


# ---------------------------------------------------------------- files


def test_invalid_yaml_names_a_line(tmp_path):
    text = "name: two\nbandwidth_model: transfer\nnodes: {A: [1, 2}\n"
    path = _write_text(tmp_path, text)
    err = _refused(path, "line 3", "YAML")
    assert err.field.startswith("line ")


def test_invalid_yaml_bad_indentation(tmp_path):
    text = "name: two\nnodes:\n  A: {lat: 0, lon: 0}\n B: {lat: 0, lon: 1}\n"
    path = _write_text(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    assert info.value.field.startswith("line ")
    assert "YAML" in info.value.reason


def test_file_not_found(tmp_path):
    path = tmp_path / "nope.yaml"
    err = _refused(path, "file", "no such file")
    assert "nope.yaml" in str(err)


def test_directory_is_not_a_scenario(tmp_path):
    _refused(tmp_path, "file", "is a folder")


def test_empty_file(tmp_path):
    path = _write_text(tmp_path, "")
    err = _refused(path, "scenario", "mapping")
    assert "nothing" in err.reason


def test_file_with_only_comments(tmp_path):
    path = _write_text(tmp_path, "# nothing here yet\n")
    _refused(path, "scenario", "mapping")


def test_top_level_list(tmp_path):
    path = _write_text(tmp_path, "- name: two\n")
    _refused(path, "scenario", "mapping", "list")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    _refused(path, "file", "read")


# ---------------------------------------------------------------- positive


def test_base_yaml_text_is_valid(tmp_path):
    """The hand-written text and the dict used elsewhere are the same scenario."""
    by_hand = load_scenario(_write_text(tmp_path, _BASE_YAML))
    dumped = load_scenario(_write(tmp_path, _base(), name="dumped.yaml"))
    assert dataclasses.replace(by_hand, source="") == dataclasses.replace(
        dumped, source=""
    )


def test_exponent_numbers_unquoted_are_floats(tmp_path):
    text = _edit(_BASE_YAML, "tokens_per_s: 1500000", "tokens_per_s: 2.5e6")
    text = _edit(text, "gpus: 2000", "gpus: 2e3")
    # The plain YAML 1.1 reader keeps both as text.
    raw = yaml.safe_load(text)
    assert raw["demand"][0]["tokens_per_s"] == "2.5e6"
    assert raw["assets"][0]["gpus"] == "2e3"
    sc = load_scenario(_write_text(tmp_path, text))
    assert sc.demand[0].tokens_per_s == 2_500_000.0
    assert isinstance(sc.demand[0].tokens_per_s, float)
    assert sc.assets[0].gpus == 2000.0


def test_1e6_unquoted_is_a_float(tmp_path):
    text = _edit(_BASE_YAML, "tokens_per_s: 1500000", "tokens_per_s: 1e6")
    text = _edit(text, "{chat: 1000}", "{chat: 1E3}")
    text = _edit(text, "latency_ms: 10", "latency_ms: 1.5e+1")
    sc = load_scenario(_write_text(tmp_path, text))
    assert sc.demand[0].tokens_per_s == 1_000_000.0
    assert isinstance(sc.demand[0].tokens_per_s, float)
    assert sc.asset_types["g"].tokens_per_s_per_gpu["chat"] == 1000.0
    assert sc.links[0].latency_ms == 15.0


def test_zero_capacity_link_is_accepted(tmp_path):
    data = _base()
    data["links"][0]["capacity_gbps"] = 0
    sc = load_scenario(_write(tmp_path, data))
    assert sc.links[0].capacity_gbps == 0.0


def test_parallel_links_get_distinct_default_ids(tmp_path):
    data = _base()
    data["links"] = [
        {"a": "A", "b": "B", "capacity_gbps": 1, "latency_ms": 10},
        {"a": "A", "b": "B", "capacity_gbps": 2, "latency_ms": 20},
        {"a": "A", "b": "B", "capacity_gbps": 3, "latency_ms": 30},
    ]
    sc = load_scenario(_write(tmp_path, data))
    assert [link.id for link in sc.links] == ["A-B", "A-B#2", "A-B#3"]
    assert [link.capacity_gbps for link in sc.links] == [1.0, 2.0, 3.0]


def test_bids_without_hard_demand_default_to_zero(tmp_path):
    data = _base()
    data["demand"][0] = {
        "node": "B",
        "workload": "chat",
        "bids": [{"tokens_per_s": 1e6, "value_usd_per_mtok": 4.0}],
    }
    sc = load_scenario(_write(tmp_path, data))
    assert sc.demand[0].tokens_per_s == 0.0
    assert sc.demand[0].bids[0].tokens_per_s == 1e6


def _bundled_files() -> list[str]:
    folder = resources.files("scenarios.data")
    return sorted(
        f.name[: -len(".yaml")] for f in folder.iterdir() if f.name.endswith(".yaml")
    )


def test_bundled_scenarios_list_the_data_folder_and_load_by_name():
    names = scenarios.bundled_scenarios()
    assert names == _bundled_files()
    for name in names:
        sc = load_scenario(name)
        assert sc.source == f"{name}.yaml"
        assert sc.name
        assert sc.nodes and sc.workloads and sc.assets


def test_us5_is_bundled():
    assert "us5" in scenarios.bundled_scenarios()
    sc = load_scenario("us5")
    assert sc.name == "us5"


# ---------------------------------------------------------------- overrides


def _loaded(tmp_path):
    data = _base()
    data["demand"].append(
        {
            "node": "A",
            "workload": "chat",
            "tokens_per_s": 1000,
            "bids": [
                {"tokens_per_s": 200, "value_usd_per_mtok": 4.0},
                {"tokens_per_s": 300, "value_usd_per_mtok": 1.0},
            ],
        }
    )
    return load_scenario(_write(tmp_path, data))


def test_override_bandwidth_model(tmp_path):
    sc = _loaded(tmp_path)
    out = with_overrides(sc, bandwidth_model="token")
    assert out.bandwidth_model == "token"
    assert sc.bandwidth_model == "transfer"  # the original is unchanged
    assert out.link_bits_per_token("chat") == 200  # token_equivalent_bits


def test_override_bandwidth_model_unknown(tmp_path):
    sc = _loaded(tmp_path)
    with pytest.raises(ScenarioError) as info:
        with_overrides(sc, bandwidth_model="foo")
    assert info.value.source == sc.source
    assert info.value.field == "--bandwidth-model"
    assert "'foo'" in info.value.reason


def test_override_latency_limit(tmp_path):
    sc = _loaded(tmp_path)
    out = with_overrides(sc, latency_limits_ms={"chat": 5})
    assert out.workloads["chat"].latency_limit_ms == 5.0
    assert out.workloads["chat"].bits_per_token == 100.0
    assert sc.workloads["chat"].latency_limit_ms == 100.0


def test_override_latency_limit_unknown_workload(tmp_path):
    sc = _loaded(tmp_path)
    with pytest.raises(ScenarioError) as info:
        with_overrides(sc, latency_limits_ms={"nope": 5})
    err = info.value
    assert err.source == sc.source
    assert "--latency-limit" in err.field
    assert "nope" in err.field
    assert "unknown workload" in err.reason
    assert "chat" in err.reason  # the known workloads are listed
    assert "--latency-limit" in str(err)


def test_override_latency_limit_negative(tmp_path):
    sc = _loaded(tmp_path)
    with pytest.raises(ScenarioError) as info:
        with_overrides(sc, latency_limits_ms={"chat": -1})
    assert info.value.field == "--latency-limit chat"
    assert ">= 0" in info.value.reason


def test_override_demand_scale_scales_hard_demand_and_bids(tmp_path):
    sc = _loaded(tmp_path)
    out = with_overrides(sc, demand_scale=2.5)
    by_node = {d.node: d for d in out.demand}
    assert by_node["B"].tokens_per_s == pytest.approx(1.5e6 * 2.5)
    assert by_node["A"].tokens_per_s == pytest.approx(1000 * 2.5)
    assert [b.tokens_per_s for b in by_node["A"].bids] == pytest.approx(
        [200 * 2.5, 300 * 2.5]
    )
    # Bid values are prices, not quantities: unchanged.
    assert [b.value_usd_per_mtok for b in by_node["A"].bids] == [4.0, 1.0]
    assert {d.node: d.tokens_per_s for d in sc.demand} == {"B": 1.5e6, "A": 1000}


def test_override_demand_scale_zero(tmp_path):
    out = with_overrides(_loaded(tmp_path), demand_scale=0)
    assert all(d.tokens_per_s == 0 for d in out.demand)


@pytest.mark.parametrize("scale", [-1, math.nan, math.inf])
def test_override_demand_scale_invalid(tmp_path, scale):
    sc = _loaded(tmp_path)
    with pytest.raises(ScenarioError) as info:
        with_overrides(sc, demand_scale=scale)
    assert info.value.source == sc.source
    assert info.value.field == "--demand-scale"
    assert repr(scale) in info.value.reason


def test_no_overrides_is_identity(tmp_path):
    sc = _loaded(tmp_path)
    assert with_overrides(sc) == sc
