using CoeffTune.Data;

namespace CoeffTune.Tests.Data;

public class SamplingTests
{
    /// <summary>Unbalanced labels: class 0 x 500, class 1 x 300, class 2 x 200, interleaved.</summary>
    private static TextDataset Unbalanced()
    {
        var labels = Enumerable.Range(0, 1000).Select(i => i % 10 < 5 ? 0 : i % 10 < 8 ? 1 : 2).ToArray();
        return new TextDataset(labels.Select(l => $"t{l}").ToArray(), labels, ["a", "b", "c"], "toy");
    }

    [Fact]
    public void Per_class_sampling_gives_exactly_n_of_each_class_and_depends_only_on_the_seed()
    {
        var data = Unbalanced();

        var a = Sampling.PerClass(data, 7, seed: 3);
        var b = Sampling.PerClass(data, 7, seed: 3);
        var c = Sampling.PerClass(data, 7, seed: 4);

        Assert.Equal(21, a.Length);
        Assert.Equal([7, 7, 7], a.GroupBy(i => data.Labels[i]).OrderBy(g => g.Key).Select(g => g.Count()));
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(a.Order(), a);
    }

    [Fact]
    public void Stratified_sampling_keeps_class_shares_by_largest_remainder()
    {
        var data = Unbalanced();

        var s = Sampling.Stratified(data, 101, seed: 0);

        // 101 * (0.5, 0.3, 0.2) = 50.5, 30.3, 20.2 -> floors 50, 30, 20; the one left goes to class 0.
        Assert.Equal([51, 30, 20], s.GroupBy(i => data.Labels[i]).OrderBy(g => g.Key).Select(g => g.Count()));
        Assert.Equal(101, s.Distinct().Count());
        Assert.Equal([1, 1, 1], Sampling.Quotas([1, 1, 1], 3));
        Assert.Equal([1, 1, 0], Sampling.Quotas([1, 1, 1], 2));
    }

    [Fact]
    public void Per_class_sampling_asking_more_than_a_class_has_names_the_class()
    {
        var e = Assert.Throws<ArgumentException>(() => Sampling.PerClass(Unbalanced(), 201, 0));
        Assert.Equal("toy: class 2 has 200 items, fewer than the 201 asked for", e.Message);
    }

    [Fact]
    public void Split_file_is_byte_identical_for_the_same_seed_and_data_and_round_trips()
    {
        using var dir = new TempDir();
        var pool = Unbalanced();
        var test = pool.Subset(Enumerable.Range(0, 50).ToArray(), "toy/test");

        DataSplit.Create(pool, test, seed: 5).Save(Path.Combine(dir.Path, "a.json"));
        DataSplit.Create(Unbalanced(), test, seed: 5).Save(Path.Combine(dir.Path, "b.json"));
        DataSplit.Create(pool, test, seed: 6).Save(Path.Combine(dir.Path, "c.json"));
        var bytesA = File.ReadAllBytes(Path.Combine(dir.Path, "a.json"));

        Assert.Equal(bytesA, File.ReadAllBytes(Path.Combine(dir.Path, "b.json")));
        Assert.NotEqual(bytesA, File.ReadAllBytes(Path.Combine(dir.Path, "c.json")));
        var loaded = DataSplit.Load(Path.Combine(dir.Path, "a.json"));
        Assert.Equal(("toy", 5, 1000, 50), (loaded.Dataset, loaded.Seed, loaded.PoolSize, loaded.TestPoolSize));
        Assert.Equal((800, 200, 50), (loaded.Train.Count, loaded.Validation.Count, loaded.Test.Count));
        Assert.Empty(loaded.Train.Intersect(loaded.Validation));
        // Both parts keep the 5:3:2 class shares exactly.
        Assert.Equal([400, 240, 160], loaded.Train.GroupBy(i => pool.Labels[i]).OrderBy(g => g.Key).Select(g => g.Count()));
        Assert.Equal([100, 60, 40], loaded.Validation.GroupBy(i => pool.Labels[i]).OrderBy(g => g.Key).Select(g => g.Count()));
        loaded.Save(Path.Combine(dir.Path, "d.json"));
        Assert.Equal(bytesA, File.ReadAllBytes(Path.Combine(dir.Path, "d.json")));
    }

    [Fact]
    public void Split_applied_to_data_of_another_size_is_refused()
    {
        var pool = Unbalanced();
        var test = pool.Subset([0, 1, 2]);
        var split = DataSplit.Create(pool, test, seed: 0, trainSize: 8, validationSize: 2);

        var e = Assert.Throws<InvalidOperationException>(() => split.Apply(pool.Subset(Enumerable.Range(0, 999).ToArray()), test));

        Assert.Contains("made for a pool of 1000 and a test set of 3, the data have 999 and 3", e.Message);
        var (train, val, t) = split.Apply(pool, test);
        Assert.Equal((8, 2, 3), (train.Count, val.Count, t.Count));
    }

    [Fact]
    public void Split_file_with_sizes_that_disagree_with_its_lists_names_the_file()
    {
        using var dir = new TempDir();
        var path = dir.File("split.json",
            "{\"format\": 1, \"dataset\": \"x\", \"seed\": 0, \"sizes\": {\"pool\": 5, \"test_pool\": 2, \"train\": 3, \"validation\": 1, \"test\": 2}, " +
            "\"train\": [0, 1], \"validation\": [2], \"test\": [0, 1]}");

        var e = Assert.Throws<InvalidDataException>(() => DataSplit.Load(path));

        Assert.Equal("split.json: sizes.train = 3 but the list has 2 indices", e.Message);
    }

    [Fact]
    public void Group_hold_out_never_puts_a_document_on_both_sides_and_holds_out_a_fifth_of_each_class()
    {
        // 10 documents of class 0 and 5 of class 1, each cut into 3..7 passages.
        var labels = new List<int>();
        var groups = new List<string>();
        for (int d = 0; d < 15; d++)
            for (int p = 0; p < 3 + d % 5; p++) { labels.Add(d < 10 ? 0 : 1); groups.Add($"doc{d}"); }

        var (train, test) = Sampling.HoldOutGroups(labels, groups, 2, 0.2, seed: 1);

        var trainDocs = train.Select(i => groups[i]).ToHashSet();
        var testDocs = test.Select(i => groups[i]).ToHashSet();
        Assert.Empty(trainDocs.Intersect(testDocs));
        Assert.Equal(labels.Count, train.Length + test.Length);
        Assert.Equal(2, testDocs.Count(d => int.Parse(d[3..]) < 10));
        Assert.Equal(1, testDocs.Count(d => int.Parse(d[3..]) >= 10));
    }

    [Fact]
    public void Index_batches_cover_every_index_once_and_shuffle_by_seed()
    {
        var plain = IndexBatches.Make(10, 4).ToList();
        var shuffled = IndexBatches.Make(10, 4, shuffleSeed: 1).ToList();

        Assert.Equal([4, 4, 2], plain.Select(b => b.Length));
        Assert.Equal(Enumerable.Range(0, 10), plain.SelectMany(b => b));
        Assert.Equal(Enumerable.Range(0, 10), shuffled.SelectMany(b => b).Order());
        Assert.NotEqual(Enumerable.Range(0, 10), shuffled.SelectMany(b => b));
        Assert.Equal(shuffled.SelectMany(b => b), IndexBatches.Make(10, 4, shuffleSeed: 1).SelectMany(b => b));
        Assert.Equal(2, IndexBatches.Make(10, 4, dropLast: true).Count());
    }
}
