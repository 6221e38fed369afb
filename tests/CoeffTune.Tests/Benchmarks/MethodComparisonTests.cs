using System.Text.Json;
using CoeffTune.Benchmarks;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Dora;
using CoeffTune.Methods.Lora;
using CoeffTune.Training;

namespace CoeffTune.Tests.Benchmarks;

/// <summary>
/// The comparison's orchestration against reports the command line wrote before it moved into the library
/// (Fixtures/Bench: the committed ablation and text results, every run's result in their JSON).
/// </summary>
public sealed class MethodComparisonTests : IDisposable
{
    private readonly TempDir temp = new();
    public void Dispose() => temp.Dispose();

    private static string Fixture(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Bench", file);

    [Theory]
    [InlineData("ablation")]
    [InlineData("text")]
    public void Finished_runs_are_read_from_their_folders_and_the_report_is_byte_for_byte_the_earlier_one(string name)
    {
        var earlier = JsonDocument.Parse(File.ReadAllText(Fixture($"{name}.json"))).RootElement;
        var setup = BenchSetups.ByName[name](false);
        // Every run finished: its result.json where the comparison keeps it (runs/<task>/<label>/seed<N>/result.json).
        foreach (var run in earlier.GetProperty("runs").EnumerateArray())
        {
            var r = run.Deserialize<BenchRunResult>()!;
            var folder = Path.Combine(temp.Path, "runs", r.Task, r.Method, $"seed{r.Seed}");
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "result.json"), JsonSerializer.Serialize(r));
        }
        var log = new StringWriter();
        var runs = MethodComparison.RunAll(setup, temp.Path, log);
        Assert.Equal("", log.ToString());                       // nothing ran again
        Assert.Equal(setup.Tasks.Count * setup.Methods.Count * setup.Seeds, runs.Count);
        Assert.Equal(earlier.GetProperty("runs").Deserialize<List<BenchRunResult>>(), runs);

        var gflops = earlier.GetProperty("methods").EnumerateObject().ToDictionary(m => m.Name, m => m.Value.GetProperty("gflops").GetDouble());
        var rows = BenchReport.Summarise(setup, runs, gflops);
        var command = earlier.GetProperty("command").GetString()!;
        Assert.Equal(File.ReadAllText(Fixture($"{name}.md")), BenchReport.Markdown(setup, rows, command));
        var extra = earlier.GetProperty("extra");
        var json = Path.Combine(temp.Path, $"{name}.json");
        BenchReport.Json(json, setup, rows, runs, command,
            extra.ValueKind == JsonValueKind.Null ? null : new { pretrain_test_accuracy = extra.GetProperty("pretrain_test_accuracy").GetDouble() });
        Assert.Equal(File.ReadAllText(Fixture($"{name}.json")), File.ReadAllText(json));
        Assert.Equal((Path.Combine(temp.Path, $"{name}.md"), json, Path.Combine(temp.Path, $"{name}.png")), MethodComparison.Files(setup, temp.Path));
    }

    /// <summary>
    /// The recipe strings and options the benches' runs were made with before the rows became typed configs
    /// (label, recipe, options as given): an interrupted run resumes only if its settings read back the same.
    /// </summary>
    public static TheoryData<string, string, string, string> EarlierRows
    {
        get
        {
            var d = new TheoryData<string, string, string, string>();
            foreach (var bench in new[] { "vtab-mini", "text" })
            {
                foreach (var r in new[] { "linear", "bitfit", "lora", "ssf", "coeff" }) d.Add(bench, r, r, "{}");
                foreach (var r in new[] { "coeff+lora", "coeff+ssf" }) d.Add(bench, r, r, """{"coeff":{"coeff_dropout":0.1}}""");
            }
            d.Add("vtab-mini", "full", "full", """{"full":{"lr":0.0003}}""");
            d.Add("text", "full", "full", """{"full":{"lr":5e-05}}""");
            d.Add("text", "dora", "dora", "{}");
            d.Add("text", "coeff+dora", "coeff+dora", """{"coeff":{"coeff_dropout":0.1}}""");
            d.Add("ablation", "residual, zero init", "coeff", """{"coeff":{"parameterization":"residual"}}""");
            d.Add("ablation", "direct, identity init", "coeff", """{"coeff":{"parameterization":"direct-identity"}}""");
            d.Add("ablation", "direct, random init", "coeff", """{"coeff":{"parameterization":"direct-random"}}""");
            foreach (var p in new[] { "0", "0.1", "0.2", "0.4" })
                d.Add("ablation", $"coeff+lora p={p}", "coeff+lora", "{\"coeff\":{\"coeff_dropout\":" + p + "}}");
            return d;
        }
    }

    [Theory]
    [MemberData(nameof(EarlierRows))]
    public void Every_row_reads_back_as_the_recipe_and_options_its_runs_were_made_with(string bench, string label, string recipe, string options)
    {
        var row = BenchSetups.ByName[bench](false).Methods.Single(m => m.Label == label);
        var given = JsonSerializer.Deserialize<Dictionary<string, System.Text.Json.Nodes.JsonObject>>(options)!;
        var earlier = CoeffTune.Methods.Recipe.Parse(recipe, given).Select(c => c.ToJson()).ToList();
        var now = CoeffTune.Methods.Recipe.Parse(row.Recipe, row.Options).Select(c => c.ToJson()).ToList();
        Assert.Equal(recipe, row.Recipe);
        Assert.Equal(earlier.Count, now.Count);
        for (int i = 0; i < earlier.Count; i++)
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(earlier[i], now[i]), $"{bench} {label}: {earlier[i].ToJsonString()} before, {now[i].ToJsonString()} now");
    }

    [Fact]
    public void Every_bench_has_exactly_the_earlier_rows_in_order()
    {
        // The earlier rows first, in their order; the rest of Table 1 after them.
        Assert.Equal(["linear", "bitfit", "lora", "ssf", "coeff", "coeff+lora", "coeff+ssf", "full", "fact", "coeff+fact", "snell", "coeff+snell", "adapter", "vpt"],
            BenchSetups.VtabMini(false).Methods.Select(m => m.Label));
        Assert.Equal(["linear", "bitfit", "lora", "ssf", "dora", "coeff", "coeff+lora", "coeff+dora", "coeff+ssf", "full"], BenchSetups.Text(false).Methods.Select(m => m.Label));
        Assert.Equal(["residual, zero init", "direct, identity init", "direct, random init", "coeff+lora p=0", "coeff+lora p=0.1", "coeff+lora p=0.2", "coeff+lora p=0.4"],
            BenchSetups.Ablation(false).Methods.Select(m => m.Label));
    }

    [Fact]
    public void A_row_shows_the_options_that_tell_it_apart()
    {
        var rows = new List<BenchMethod>
        {
            new("zero", new CoeffConfig()),
            new("random", new CoeffConfig(parameterization: AlphaParameterization.DirectRandom)),
            new(new CoeffConfig(dropout: 0.1), new LoraConfig(rank: 4)),
        };
        // Off the defaults, or different between rows of one recipe: "zero" shows its default parameterisation.
        Assert.Equal("""{"coeff":{"parameterization":"residual"}}""", JsonSerializer.Serialize(rows[0].Distinguishing(rows)));
        Assert.Equal("""{"coeff":{"parameterization":"direct-random"}}""", JsonSerializer.Serialize(rows[1].Distinguishing(rows)));
        Assert.Equal("""{"coeff":{"coeff_dropout":0.1},"lora":{"r":4}}""", JsonSerializer.Serialize(rows[2].Distinguishing(rows)));
        Assert.Null(new BenchMethod(new LoraConfig()).Distinguishing([new BenchMethod(new LoraConfig())]));
    }

    [Fact]
    public void A_method_is_a_valid_recipe_with_a_label_that_can_name_a_folder()
    {
        var m = new BenchMethod(new CoeffConfig(dropout: 0.1), new DoraConfig(new LoraConfig()));
        Assert.Equal("coeff+dora", m.Label);
        Assert.Equal("coeff+dora", m.Recipe);
        Assert.Equal(0.1, m.Options["coeff"]["coeff_dropout"]!.GetValue<double>());
        Assert.Contains("lora and dora", Assert.Throws<ArgumentException>(() => new BenchMethod(new LoraConfig(), new DoraConfig(new LoraConfig()))).Message);
        Assert.Contains("names 'coeff' twice", Assert.Throws<ArgumentException>(() => new BenchMethod(new CoeffConfig(), new CoeffConfig())).Message);
        Assert.Contains("cannot name a run folder", Assert.Throws<ArgumentException>(() => new BenchMethod("a/b", new CoeffConfig())).Message);
        Assert.Throws<ArgumentException>(() => new BenchMethod("x"));
    }

    [Fact]
    public void Selecting_keeps_the_setups_order_and_names_what_it_does_not_have()
    {
        var s = BenchSetups.VtabMini(quick: true);
        var picked = s.Select(["digits", "mnist"], ["coeff+lora", "linear"], seeds: 2);
        Assert.Equal(["digits", "mnist"], picked.Tasks);
        Assert.Equal(["linear", "coeff+lora"], picked.Methods.Select(m => m.Label));
        Assert.Equal(2, picked.Seeds);
        var e = Assert.Throws<ArgumentException>(() => s.Select(tasks: ["cifar"]));
        Assert.Equal("tasks", e.ParamName);
        Assert.StartsWith("'cifar' is not a task of this bench (mnist, digits, mnist-rotation, fashion-coarse)", e.Message);
        Assert.Equal("methods", Assert.Throws<ArgumentException>(() => s.Select(methods: ["dora"])).ParamName);
        Assert.Equal("seeds", Assert.Throws<ArgumentException>(() => s.Select(seeds: 0)).ParamName);
        Assert.Contains("has two rows labelled 'coeff'", Assert.Throws<ArgumentException>(() => s with { Methods = [new(new CoeffConfig()), new(new CoeffConfig())] }).Message);
        Assert.Contains("'svhn' is not a task of the catalogue", Assert.Throws<ArgumentException>(() => s with { Tasks = ["svhn"] }).Message);
    }

    [Fact]
    public void The_quick_setups_shrink_every_budget()
    {
        foreach (var (name, make) in BenchSetups.ByName)
        {
            var (full, quick) = (make(false), make(true));
            Assert.Equal(name, full.Name);
            Assert.Equal((3, 1), (full.Seeds, quick.Seeds));
            Assert.Equal((96, 32, 100, 32), (quick.TrainSize, quick.ValidationSize, quick.TestSize, quick.MaxTokens));
            Assert.Equal((8, 16), (quick.Train.Epochs, quick.Train.BatchSize));
            Assert.Equal(full.Methods.Select(m => m.Label), quick.Methods.Select(m => m.Label));
            Assert.Equal("vit-fmnist-4000x2", quick.Pretrain.CacheName);
        }
    }
}
