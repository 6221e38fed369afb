using System.CommandLine;
using CoeffTune.Cli.Commands;
using CoeffTune.Training;

namespace CoeffTune.Tests.Cli;

/// <summary>
/// One small coeff+lora run of MiniLM on spam, trained the first time a test asks for it and shared by
/// every test of the run (the tests that use it sit in the "real models" collection, so they never race).
/// </summary>
internal static class TrainedRun
{
    public const int MaxTokens = 32, BatchSize = 16;
    private static readonly Lazy<FineTuneResult> run = new(Train, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly string dir = Path.Combine(Path.GetTempPath(), "coefftune-cli-run-" + Environment.ProcessId);

    public static FineTuneResult Result => run.Value;
    /// <summary>The run folder (adapter/, split.json, metrics.jsonl); trains on first use.</summary>
    public static string Dir { get { _ = run.Value; return dir; } }

    private static FineTuneResult Train()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } };
        return FineTune.Run(new FineTuneOptions
        {
            Model = "minilm", Task = "spam", Method = "coeff+lora", TrainSize = 64, ValidationSize = 16, TestSize = 32, MaxTokens = MaxTokens,
            Train = new TrainOptions { Epochs = 1, BatchSize = BatchSize, Seed = 3 }, OutDir = dir,
        });
    }
}

/// <summary>Runs the command line in-process with stdout and stderr captured.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = CoeffTune.Cli.Commands.Commands.Root();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            int code = CoeffTune.Cli.Cli.Run(root, args);
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
