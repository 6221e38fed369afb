using System.CommandLine;
using CoeffTune.Training;
using Spectre.Console;

namespace CoeffTune.Cli.Commands;

/// <summary>
/// <c>coefftune demo</c>: the first thing to run. Fetches all-MiniLM-L6-v2 and the SpamAssassin corpus,
/// trains a linear head on the frozen model (the base) and coeff+lora (the adapted model) on the same
/// split, and prints both side by side.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var outDir = new Option<string>("--out") { Description = "folder for the two runs", DefaultValueFactory = _ => "runs/demo" };
        var trainSize = new Option<int>("--train-size") { Description = "training e-mails", DefaultValueFactory = _ => 400 };
        var epochs = new Option<int>("--epochs") { Description = "epochs per run", DefaultValueFactory = _ => 3 };
        var device = new Option<string>("--device") { Description = "cpu, cuda, ...", DefaultValueFactory = _ => "cpu" };
        var cmd = new Command("demo", "Fine-tune MiniLM on SpamAssassin with coeff+lora and compare it with the base model's linear probe") { outDir, trainSize, epochs, device };
        cmd.SetAction(p =>
        {
            string dir = p.GetValue(outDir)!;
            var baseOptions = new FineTuneOptions
            {
                Model = "minilm", Task = "spam", Method = "linear", TrainSize = p.GetValue(trainSize), ValidationSize = 100, TestSize = 500,
                MaxTokens = 64, OutDir = Path.Combine(dir, "linear"),
                Train = new TrainOptions { Epochs = p.GetValue(epochs), BatchSize = 16, LearningRate = 5e-3, Seed = 0, Device = p.GetValue(device)! },
            };
            var adaptedOptions = baseOptions with
            {
                Method = "coeff+lora", OutDir = Path.Combine(dir, "coeff+lora"),
                Train = baseOptions.Train with { LearningRate = 1e-3 },
            };
            AnsiConsole.MarkupLine("[bold]CoeffTune demo[/]: all-MiniLM-L6-v2 on SpamAssassin (ham vs spam), the same split for both runs");
            var runs = new[] { baseOptions, adaptedOptions }
                .Select(o => Cli.WithFlags(new Dictionary<string, string> { [nameof(TrainOptions.Epochs)] = "--epochs" },
                    () => ConsoleProgress.Run($"{o.Method}", obs => FineTune.Run(o, obs, ConsoleProgress.Log))))
                .ToList();
            foreach (var (r, o) in runs.Zip(new[] { baseOptions, adaptedOptions })) Report.Write(r, o.OutDir);
            // The result goes to the current standard output (AnsiConsole binds the output it first saw).
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
            var t = new Table().Title("SpamAssassin test accuracy").AddColumns("model", "recipe", "trainable", "test accuracy", "time");
            foreach (var r in runs)
                t.AddRow(r.Recipe == "linear" ? "base (frozen MiniLM, linear head)" : "adapted", r.Recipe, $"{r.Trainable.Total:N0} ({r.Trainable.Percent:0.00}%)",
                    $"[bold]{r.Test.Accuracy:P2}[/]", $"{r.Seconds:F0} s");
            console.Write(t);
            console.MarkupLine($"adapted: {Markup.Escape(runs[1].Trainable.ToString())}");
            console.MarkupLine($"the adapter ({new FileInfo(Path.Combine(runs[1].AdapterDir, "adapter_model.safetensors")).Length / 1024.0:F0} KiB) is in {Markup.Escape(runs[1].AdapterDir)}");
            return 0;
        });
        return cmd;
    }
}
