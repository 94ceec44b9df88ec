from transforms.by_identity import KEPT, ByIdentity


def test_a_config_object_is_built_from_once_and_an_equal_other_one_again():
    built: list[list] = []
    compiled = ByIdentity(lambda rules: (built.append(rules), len(built))[1])
    rules, twin = [{"category": "Сайт"}], [{"category": "Сайт"}]
    assert compiled(rules) == compiled(rules) == 1
    assert compiled(twin) == 2
    assert built == [rules, twin]


def test_at_most_a_few_config_objects_are_kept():
    built: list[object] = []
    compiled = ByIdentity(lambda rules: built.append(rules) or len(built))
    configs = [[n] for n in range(KEPT + 1)]
    for config in configs:
        compiled(config)
    compiled(configs[0])
    assert len(built) == KEPT + 2  # the first was let go and built again
