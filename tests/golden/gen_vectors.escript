#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% Golden ETF vectors for confd_ha, produced by the real Erlang term_to_binary/2.
%%
%%   escript tests/golden/gen_vectors.escript > tests/golden/vectors.json
%%
%% Output: {"otp_release": ..., "erts_version": ..., "term_to_binary_options": ...,
%%          "atom_tag": 100, "vectors": {"name": "hex", ...}}
%%
%% Every term here is mirrored, written out by hand, in tests/golden/terms.py (VECTORS); keep
%% the two in step. Vectors whose name starts with decode_only_ use encodings our canonical
%% encoder never emits (STRING_EXT 107 for lists of small integers, SMALL_ATOM_UTF8 119); they
%% are only used to test decoding.
%%
%% minor_version 1 makes OTP emit latin-1 atoms as ATOM_EXT (100) and floats as NEW_FLOAT (70),
%% as our canonical encoder does (OTP >= 26 defaults to minor_version 2, i.e. UTF-8 atoms).

-mode(compile).

-define(OPTS, [{minor_version, 1}]).

main(_) ->
    AtomTag = atom_tag(),
    Vectors = [{Name, term_to_binary(Term, ?OPTS)} || {Name, Term} <- vectors()],
    ok = check_unique([N || {N, _} <- Vectors]),
    io:put_chars(["{\n",
                  "  \"otp_release\": ", json_str(otp_version()), ",\n",
                  "  \"erts_version\": ", json_str(erlang:system_info(version)), ",\n",
                  "  \"term_to_binary_options\": ", json_str("[{minor_version,1}]"), ",\n",
                  "  \"atom_tag\": ", integer_to_list(AtomTag), ",\n",
                  "  \"vectors\": {\n",
                  lists:join(",\n", [["    ", json_str(N), ": ", json_str(hex(B))]
                                     || {N, B} <- Vectors]),
                  "\n  }\n}\n"]).

%% The tag OTP uses for a plain ASCII atom with our options (we expect ATOM_EXT, 100).
atom_tag() ->
    <<131, Tag, _/binary>> = term_to_binary(ok, ?OPTS),
    case Tag of
        100 -> ok;
        _ -> io:format(standard_error, "warning: atoms encoded with tag ~p, not 100~n", [Tag])
    end,
    Tag.

otp_version() ->
    Rel = erlang:system_info(otp_release),
    File = filename:join([code:root_dir(), "releases", Rel, "OTP_VERSION"]),
    case file:read_file(File) of
        {ok, V} -> string:trim(binary_to_list(V));
        _ -> Rel
    end.

check_unique(Names) ->
    case length(Names) =:= length(lists:usort(Names)) of
        true -> ok;
        false -> erlang:error({duplicate_vector_names, Names -- lists:usort(Names)})
    end.

hex(Bin) -> [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin].

json_str(S) -> [$", S, $"].

seq_bin(From, To) -> list_to_binary(lists:seq(From, To)).

%% ------------------------------------------------------------------------------ vectors

vectors() ->
    orders() ++ nodeid_values() ++ replies() ++ statuses() ++ event_socket()
        ++ peer() ++ generic() ++ decode_only().

%% wire-protocol.md §6.3 / §12.2
orders() ->
    [{"order_beprimary_n1", {1, <<"n1">>}},
     {"order_besecondary_ipv4_wait1", {2, <<"n2">>, {<<"n1">>, {10,0,0,1}}, 1}},
     {"order_besecondary_ipv4_wait0", {2, <<"n2">>, {<<"n1">>, {10,0,0,1}}, 0}},
     {"order_besecondary_ipv6_wait0", {2, <<"n2">>, {<<"n1">>, {0,0,0,0,0,0,0,1}}, 0}},
     {"order_besecondary_ipv6_wait1",
      {2, <<"n2">>, {<<"n1">>, {16#2001,16#db8,0,0,0,0,0,1}}, 1}},
     {"order_besecondary_straddr_wait1", {2, <<"n2">>, {<<"n1">>, <<"primary.example">>}, 1}},
     {"order_benone", {3}},
     {"order_getstatus", {4}},
     {"order_secondary_dead_n2", {5, <<"n2">>}},
     {"order_berelay", {6}}].

%% Node ids of every Value term form of W-26 (§7.3), each as a beprimary order {1, Value}.
nodeid_values() ->
    V = [{"noexists", not_found},
         {"buf", <<"node-1">>},
         {"buf_empty", <<>>},
         {"int8", {6, -5}},
         {"int16", {7, -300}},
         {"int32", 5},
         {"int32_neg", -100000},
         {"int32_max", 2147483647},
         {"int64", {9, 5000000000}},
         {"int64_min", {9, -9223372036854775808}},
         {"uint8", {10, 255}},
         {"uint16", {11, 65535}},
         {"uint32", {12, 4000000000}},
         {"uint64_max", {13, 18446744073709551615}},
         {"uint64_near_max", {13, 18446744073709551610}},
         {"double", 2.5},
         {"ipv4", {10,0,0,1}},
         {"ipv6", {16#2001,16#db8,0,0,0,0,0,1}},
         {"bool_true", true},
         {"bool_false", false},
         {"qname", {<<"p">>, <<"n">>}},
         {"datetime", {19, {2024,1,2,3,4,5,6,1,30}}},
         {"datetime_notz", {19, {2024,1,2,3,4,5,6,[],0}}},
         {"date", {20, {2024,12,31,-5,30}}},
         {"date_notz", {20, {2024,12,31,[],0}}},
         {"time", {23, {3,4,5,6,[],0}}},
         {"duration", {27, {1,2,3,4,5,6,7}}},
         {"enum", {28, 3}},
         {"bit32", {29, 4294967295}},
         {"bit64", {30, 9223372036854775808}},
         {"list", [<<"a">>, <<"b">>]},
         {"objectref", {34, [<<"servers">>, <<"server">>]}},
         {"oid", {38, <<0,0,0,1, 0,0,0,3, 0,0,0,6>>}},
         {"binary", {39, <<0,1,2,255>>}},
         {"ipv4prefix", {40, {{10,0,0,0}, 8}}},
         {"ipv6prefix", {41, {{16#2001,16#db8,0,0,0,0,0,0}, 64}}},
         {"default", default},
         {"decimal64", {43, {12345, 2}}},
         {"decimal64_neg", {43, {-9223372036854775807, 18}}},
         {"identityref", {44, {1, 2}}},
         {"dquad", {46, <<1,2,3,4>>}},
         {"hexstr", {47, <<16#de,16#ad,16#be,16#ef>>}},
         {"ipv4_and_plen", {48, {{192,168,1,1}, 24}}},
         {"ipv6_and_plen", {49, {{16#2001,16#db8,0,0,0,0,0,1}, 64}}},
         {"bitbig", {50, <<1,0,0,0,0,0,0,0,128>>}}],
    [{"order_beprimary_nodeid_" ++ Name, {1, Value}} || {Name, Value} <- V]
        ++ [{"order_besecondary_nodeids_int32_ipv4", {2, 7, {8, {10,0,0,1}}, 1}}].

%% wire-protocol.md §6.5 / §12.2
replies() ->
    [{"reply_ok", ok},
     {"reply_error_17", {error, 17}},
     {"reply_error_26", {error, 26}},
     {"reply_error_21", {error, 21}},
     {"reply_error_28_reason", {error, 28, <<"bad token", 0>>}},
     {"reply_error_28_reason_apptag", {error, 28, {<<"x", 0>>, <<"apptag">>}}}].

%% wire-protocol.md §6.6 / §12.2
statuses() ->
    Many = [{list_to_binary(io_lib:format("n~3..0B", [I])), {10, 0, I div 128, I}}
            || I <- lists:seq(0, 254)],
    [{"status_none", {1, []}},
     {"status_secondary", {2, [{<<"n1">>, {10,0,0,1}}]}},
     {"status_primary_ipv4", {3, [{<<"n2">>, {10,0,0,2}}]}},
     {"status_primary_ipv6", {3, [{<<"n2">>, {16#2001,16#db8,0,0,0,0,0,2}}]}},
     {"status_relay", {4, [{<<"n1">>, {10,0,0,1}}, {<<"n3">>, {10,0,0,3}}]}},
     {"status_primary_255_nodes", {3, Many}},
     {"status_primary_straddr", {3, [{<<"n2">>, <<"secondary.example">>}]}}].

%% wire-protocol.md §10 / §12.3
event_socket() ->
    [{"subscribe_ha_info", {64, 0, 0, undefined, 0}},
     {"subscribe_ha_info_sync", {1048640, 0, 0, undefined, 0}},
     {"subscribe_ha_info_4tuple", {64, 0, 0, undefined}},
     {"event_noprimary_closed", {64, {1, 26}}},
     {"event_noprimary_notick", {64, {1, 31}}},
     {"event_secondary_died", {64, {2, {<<"n2">>, {10,0,0,2}}}}},
     {"event_secondary_arrived", {64, {3, {<<"n2">>, {10,0,0,2}}}}},
     {"event_secondary_arrived_ipv6", {64, {3, {<<"n2">>, {16#2001,16#db8,0,0,0,0,0,2}}}}},
     {"event_secondary_initialized_copy", {64, {4, 1}}},
     {"event_secondary_initialized_nocopy", {64, {4, 0}}},
     {"event_is_primary", {64, {5, 0}}},
     {"event_is_none", {64, {6, 0}}},
     {"event_besecondary_result_ok", {64, {7, 0}}},
     {"event_besecondary_result_badtoken", {64, {7, 28}}},
     {"event_ack_ha_synced", ha_synced}].

%% ha-behaviour.md §12 (project-defined inter-node protocol)
peer() ->
    NonceS = seq_bin(0, 31),
    NonceP = seq_bin(32, 63),
    ProofP = seq_bin(64, 95),
    ProofS = seq_bin(96, 127),
    Snapshot = [{<<"/a">>, <<"1">>}, {<<"/b">>, <<"2">>}],
    [{"peer_hello", {ha_hello, 1, 16#08020500, <<"n2">>, <<"n1">>, NonceS}},
     {"peer_challenge", {ha_challenge, <<"n1">>, NonceP, ProofP}},
     {"peer_auth_defaults", {ha_auth, ProofS, <<>>, <<>>, 0}},
     {"peer_auth", {ha_auth, ProofS, <<"fxs-fp">>, <<"cfg-fp">>, 42}},
     {"peer_sync_nocopy", {ha_sync, nocopy, 42}},
     {"peer_sync_copy", {ha_sync, copy, 42, Snapshot}},
     {"peer_synced_copy", {ha_synced, 1}},
     {"peer_synced_nocopy", {ha_synced, 0}},
     {"peer_tick", ha_tick},
     {"peer_trans", {ha_trans, 1, 43, [{<<"/a">>, <<"2">>}]}},
     {"peer_ack", {ha_ack, 1}},
     {"peer_bye", {ha_bye, 0}},
     {"peer_reject_badvsn", {ha_reject, 52}},
     {"peer_reject_badtoken", {ha_reject, 28}},
     {"peer_reject_badname", {ha_reject, 29}},
     {"peer_reject_badfxs", {ha_reject, 27}},
     {"peer_reject_badconfig", {ha_reject, 69}}].

generic() ->
    [{"int_0", 0},
     {"int_neg1", -1},
     {"int_255", 255},
     {"int_256", 256},
     {"int_i32_min", -2147483648},
     {"int_i32_max", 2147483647},
     {"int_2p31", 2147483648},
     {"int_neg_2p31_minus1", -2147483649},
     {"int_2p32", 4294967296},
     {"int_2p63", 9223372036854775808},
     {"int_2p64_minus1", 18446744073709551615},
     {"int_neg_2p64_plus1", -18446744073709551615},
     {"float_0", 0.0},
     {"float_neg0", -0.0},
     {"float_1_5", 1.5},
     {"float_neg_2_25e100", -2.25e100},
     {"float_min_subnormal", 5.0e-324},
     {"atom_empty", ''},
     {"atom_ok", ok},
     {"atom_undefined", undefined},
     {"atom_latin1_cafe", list_to_atom([$c, $a, $f, 233])},
     {"binary_empty", <<>>},
     {"binary_all_bytes", seq_bin(0, 255)},
     {"tuple_empty", {}},
     {"tuple_255", list_to_tuple(lists:seq(0, 254))},
     {"tuple_256", list_to_tuple(lists:seq(0, 255))},
     {"tuple_nested_5", {{{{{ok}}}}}},
     {"tuple_nested_100", nest(99, {})},
     {"list_empty", []},
     {"list_binaries", [<<"a">>, <<>>, <<"bc">>]},
     {"list_mixed", [1, ok, <<"x">>, 2.5, {}, [], -70000]},
     {"list_ints_not_string", [1, 256]},
     {"list_nested", [[<<"a">>], [[]], {[]}]}].

%% Encodings the canonical encoder never produces: decoding only.
decode_only() ->
    [{"decode_only_string_abc", "abc"},
     {"decode_only_list_small_ints", [0, 1, 255]},
     {"decode_only_reply_error_28_string_reason", {error, 28, "bad token"}},
     {"decode_only_status_string_addr", {3, [{<<"n2">>, "secondary.example"}]}},
     {"decode_only_atom_utf8_small", list_to_atom([$n, 16#3bb])}].

nest(0, T) -> T;
nest(N, T) -> nest(N - 1, {T}).
