using System.Text.Json.Nodes;
using CoeffTune.Training;

namespace CoeffTune.Cli.Bench;

/// <summary>
/// The benchmarks' fixed setups. They were chosen before any result was seen and are not tuned to
/// make a method win; --quick shrinks every budget for a smoke test of a few minutes.
/// </summary>
public static class BenchSetups
{
    public static readonly string[] VtabTasks = { "mnist", "digits", "mnist-rotation", "fashion-coarse" };
    public static readonly string[] TextTasks = { "spam", "brown" };

    private static Dictionary<string, JsonObject> Opt(string method, JsonObject o) => new() { [method] = o };

    private static Dictionary<string, JsonObject> Opts(params (string Method, JsonObject O)[] xs) => xs.ToDictionary(x => x.Method, x => x.O);

    /// <summary>Table 1's rows. Coefficient dropout as in the paper: 0 for alpha alone, 0.1 on top of a weight-based method.</summary>
    private static List<BenchMethod> Methods(double fullLr, bool dora)
    {
        var coeffP = new JsonObject { ["coeff_dropout"] = 0.1 };
        var list = new List<BenchMethod>
        {
            new("linear", "linear"),
            new("bitfit", "bitfit"),
            new("lora", "lora"),
            new("ssf", "ssf"),
            new("coeff", "coeff"),
            new("coeff+lora", "coeff+lora", Opt("coeff", coeffP)),
            new("coeff+ssf", "coeff+ssf", Opt("coeff", coeffP)),
            new("full", "full", Opt("full", new JsonObject { ["lr"] = fullLr })),
        };
        if (dora)
        {
            list.Insert(4, new BenchMethod("dora", "dora"));
            list.Insert(7, new BenchMethod("coeff+dora", "coeff+dora", Opt("coeff", coeffP)));
        }
        return list;
    }

    public static BenchSetup VtabMini(bool quick) => Shrink(new BenchSetup
    {
        Name = "vtab-mini", Model = "vit-fmnist", Tasks = VtabTasks, Methods = Methods(fullLr: 3e-4, dora: false),
        Train = new TrainOptions { Epochs = 20, BatchSize = 32, LearningRate = 1e-3, WeightDecay = 1e-4 },
    }, quick, quickLr: 1e-2);

    public static BenchSetup Text(bool quick) => Shrink(new BenchSetup
    {
        Name = "text", Model = "minilm", Tasks = TextTasks, Methods = Methods(fullLr: 5e-5, dora: true), TestSize = 1000, MaxTokens = 64,
        Train = new TrainOptions { Epochs = 3, BatchSize = 16, LearningRate = 1e-3, WeightDecay = 1e-4 },
    }, quick);

    /// <summary>Table 5a (alpha alone, three parameterisations) and Table 5b (coefficient dropout on coeff+lora).</summary>
    public static BenchSetup Ablation(bool quick) => Shrink(VtabMini(false) with
    {
        Name = "ablation",
        Methods = new List<BenchMethod>
        {
            new("residual, zero init", "coeff", Opt("coeff", new JsonObject { ["parameterization"] = "residual" })),
            new("direct, identity init", "coeff", Opt("coeff", new JsonObject { ["parameterization"] = "direct-identity" })),
            new("direct, random init", "coeff", Opt("coeff", new JsonObject { ["parameterization"] = "direct-random" })),
            new("coeff+lora p=0", "coeff+lora", Opt("coeff", new JsonObject { ["coeff_dropout"] = 0.0 })),
            new("coeff+lora p=0.1", "coeff+lora", Opt("coeff", new JsonObject { ["coeff_dropout"] = 0.1 })),
            new("coeff+lora p=0.2", "coeff+lora", Opt("coeff", new JsonObject { ["coeff_dropout"] = 0.2 })),
            new("coeff+lora p=0.4", "coeff+lora", Opt("coeff", new JsonObject { ["coeff_dropout"] = 0.4 })),
        },
    }, quick, quickLr: 1e-2);

    /// <summary>
    /// The --quick budgets: one seed, small splits, a short pretraining, and enough steps (6 a epoch, 8 epochs)
    /// for every method to learn something, so a smoke run can tell a method that learns from one that does not.
    /// The ViT pretrained for a quick run is weak, so the image benches train it at a higher learning rate.
    /// </summary>
    private static BenchSetup Shrink(BenchSetup s, bool quick, double? quickLr = null) => !quick ? s : s with
    {
        Seeds = 1, TrainSize = 96, ValidationSize = 32, TestSize = 100, MaxTokens = 32,
        Train = s.Train with { Epochs = 8, BatchSize = 16, LearningRate = quickLr ?? s.Train.LearningRate },
        Pretrain = new PretrainOptions { TrainImages = 4000, Epochs = 2 },
    };
}
