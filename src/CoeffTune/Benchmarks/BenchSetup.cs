using CoeffTune.Data;
using CoeffTune.Training;

namespace CoeffTune.Benchmarks;

/// <summary>
/// The fixed setup of a comparison: every task x method x seed is one fine-tuning run with the same budgets.
/// Chosen before any result is seen and printed with the results. Values are checked as they are set.
/// </summary>
public sealed record BenchSetup
{
    private readonly string name = "";
    private readonly string model = "";
    private readonly IReadOnlyList<string> tasks = [];
    private readonly IReadOnlyList<BenchMethod> methods = [];
    private readonly int seeds = 3, trainSize = 800, validationSize = 200, maxTokens = 64;
    private readonly int? testSize;
    private readonly TrainOptions train = new();

    /// <summary>Names the report files: NAME.md, NAME.json, NAME.png.</summary>
    public required string Name { get => name; init => name = NonEmpty(value, nameof(Name)); }

    /// <summary>The base model every run starts from, as <see cref="FineTune.LoadModel"/> names it ("vit-fmnist", "minilm", ...).</summary>
    public required string Model { get => model; init => model = NonEmpty(value, nameof(Model)); }

    /// <summary>Tasks of the task catalogue (<see cref="TaskCatalog.Names"/>), each once.</summary>
    public required IReadOnlyList<string> Tasks
    {
        get => tasks;
        init
        {
            if (value.Count == 0) throw new ArgumentException($"{nameof(BenchSetup)}.{nameof(Tasks)} is empty", nameof(Tasks));
            foreach (var t in value)
                if (!TaskCatalog.Names.Contains(t))
                    throw new ArgumentException($"{nameof(BenchSetup)}.{nameof(Tasks)}: '{t}' is not a task of the catalogue ({string.Join(", ", TaskCatalog.Names)})", nameof(Tasks));
            if (value.GroupBy(t => t).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new ArgumentException($"{nameof(BenchSetup)}.{nameof(Tasks)} names '{twice.Key}' twice", nameof(Tasks));
            tasks = value.ToArray();
        }
    }

    /// <summary>The rows of the comparison; labels are unique (each names a folder of runs).</summary>
    public required IReadOnlyList<BenchMethod> Methods
    {
        get => methods;
        init
        {
            if (value.Count == 0) throw new ArgumentException($"{nameof(BenchSetup)}.{nameof(Methods)} is empty", nameof(Methods));
            if (value.GroupBy(m => m.Label).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new ArgumentException($"{nameof(BenchSetup)}.{nameof(Methods)} has two rows labelled '{twice.Key}'", nameof(Methods));
            methods = value.ToArray();
        }
    }

    /// <summary>Seeds 0 .. Seeds-1: each draws its own split, initialisation and data order.</summary>
    public int Seeds { get => seeds; init => seeds = AtLeastOne(value, nameof(Seeds)); }
    public int TrainSize { get => trainSize; init => trainSize = AtLeastOne(value, nameof(TrainSize)); }
    public int ValidationSize { get => validationSize; init => validationSize = AtLeastOne(value, nameof(ValidationSize)); }
    /// <summary>Test examples per task (null: the whole held-out test set).</summary>
    public int? TestSize { get => testSize; init => testSize = value is int n ? AtLeastOne(n, nameof(TestSize)) : null; }
    /// <summary>Text tasks: tokens kept per example.</summary>
    public int MaxTokens { get => maxTokens; init => maxTokens = AtLeastOne(value, nameof(MaxTokens)); }
    /// <summary>The trainer's settings; each run's seed replaces <see cref="TrainOptions.Seed"/>.</summary>
    public required TrainOptions Train { get => train; init => train = value.Validate(); }
    /// <summary>How the ViT is pretrained here when <see cref="Model"/> is "vit-fmnist".</summary>
    public PretrainOptions Pretrain { get; init; } = new();

    /// <summary>True when the runs start from the ViT pretrained here, which is pretrained (once, cached) before them.</summary>
    public bool PretrainsVit => Model == "vit-fmnist";

    /// <summary>
    /// The same setup on some of its tasks (in the order given), some of its methods (in the setup's order, by
    /// label) and another number of seeds; null keeps what the setup has. A name the setup does not have is an
    /// error naming it and what there is.
    /// </summary>
    public BenchSetup Select(IReadOnlyList<string>? tasks = null, IReadOnlyList<string>? methods = null, int? seeds = null)
    {
        var s = this;
        if (seeds is int n) s = n >= 1 ? s with { Seeds = n } : throw new ArgumentException($"seeds must be at least 1, got {n}", nameof(seeds));
        if (tasks is { Count: > 0 })
        {
            var unknown = tasks.Except(s.Tasks).ToList();
            if (unknown.Count > 0) throw new ArgumentException($"'{unknown[0]}' is not a task of this bench ({string.Join(", ", s.Tasks)})", nameof(tasks));
            s = s with { Tasks = tasks };
        }
        if (methods is { Count: > 0 })
        {
            var unknown = methods.Except(s.Methods.Select(m => m.Label)).ToList();
            if (unknown.Count > 0) throw new ArgumentException($"'{unknown[0]}' is not a method of this bench ({string.Join(", ", s.Methods.Select(m => m.Label))})", nameof(methods));
            s = s with { Methods = s.Methods.Where(m => methods.Contains(m.Label)).ToList() };
        }
        return s;
    }

    private static string NonEmpty(string value, string property) =>
        string.IsNullOrWhiteSpace(value) ? throw new ArgumentException($"{nameof(BenchSetup)}.{property} is empty", property) : value;

    private static int AtLeastOne(int value, string property) =>
        value >= 1 ? value : throw new ArgumentException($"{nameof(BenchSetup)}.{property} must be at least 1, got {value}", property);
}
