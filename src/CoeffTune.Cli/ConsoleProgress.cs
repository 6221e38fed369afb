using CoeffTune.Training;
using Spectre.Console;

namespace CoeffTune.Cli;

/// <summary>
/// Training progress: a live bar (epoch, step, loss, examples/s, ETA) on a terminal; plain lines when
/// output is redirected, so logs stay readable.
/// </summary>
public sealed class ConsoleProgress : ITrainingObserver
{
    private readonly string label;
    private ProgressTask? task;
    private int total, stepsPerEpoch, lastPrinted;
    private DateTime start = DateTime.UtcNow;

    private ConsoleProgress(string label) => this.label = label;

    public static bool Interactive => AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;

    /// <summary>Where run messages go: through Spectre on a terminal, so they print above the live bar instead of through it.</summary>
    public static TextWriter Log => Interactive ? new SpectreWriter() : Console.Out;

    private sealed class SpectreWriter : TextWriter
    {
        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;
        public override void WriteLine(string? value) => AnsiConsole.MarkupLine(Markup.Escape(value ?? ""));
        public override void Write(char value) => AnsiConsole.Write(value.ToString());
    }

    /// <summary>Runs <paramref name="body"/> with a progress observer suited to the console.</summary>
    public static T Run<T>(string label, Func<ITrainingObserver, T> body)
    {
        var p = new ConsoleProgress(label);
        if (!Interactive) return body(p);
        T result = default!;
        AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                p.task = ctx.AddTask(Markup.Escape(label), autoStart: true, maxValue: 1);
                result = body(p);
                p.task.Value = p.task.MaxValue;
            });
        return result;
    }

    /// <summary>
    /// Runs <paramref name="body"/> with a live bar on a terminal; it reports (fraction done, what is done).
    /// Elsewhere (redirected output) it runs quietly, so piped output stays clean.
    /// </summary>
    public static T Run<T>(string label, Func<Action<double, string>, T> body)
    {
        if (!Interactive) return body((_, _) => { });
        T result = default!;
        AnsiConsole.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), autoStart: true, maxValue: 1);
                result = body((fraction, text) =>
                {
                    task.Value = Math.Clamp(fraction, 0, 1);
                    task.Description = Markup.Escape($"{label}: {text}");
                });
                task.Value = 1;
            });
        return result;
    }

    public void OnStart(int totalSteps, int stepsPerEpoch, int startStep)
    {
        total = totalSteps; this.stepsPerEpoch = stepsPerEpoch; start = DateTime.UtcNow; lastPrinted = startStep;
        if (task is not null) { task.MaxValue = totalSteps; task.Value = startStep; }
        else Console.WriteLine($"{label}: {totalSteps} steps ({stepsPerEpoch} per epoch){(startStep > 0 ? $", resuming at step {startStep}" : "")}");
    }

    public void OnStep(int step, int epoch, double loss, double examplesPerSecond)
    {
        var text = $"{label} epoch {epoch} step {step}/{total} loss {loss:F4} {examplesPerSecond:F1} ex/s";
        if (task is not null)
        {
            task.Value = step;
            task.Description = Markup.Escape(text);
            return;
        }
        if (step - lastPrinted >= Math.Max(1, stepsPerEpoch / 4) || step == total)
        {
            lastPrinted = step;
            var elapsed = (DateTime.UtcNow - start).TotalSeconds;
            var eta = step > 0 ? elapsed / step * (total - step) : 0;
            Console.WriteLine($"{text} eta {eta:F0}s");
        }
    }

    public void OnEvaluation(EpochMetrics m, bool best)
    {
        // Each objective's own score: diffusion's noise error, BLEU-4 (0-100) for generated text, the vision-language
        // tasks' mean score (0-100), otherwise accuracy (a fraction).
        var v = m.Validation;
        var score = v.Metrics.ContainsKey("mse") ? $"validation noise MSE {v.Loss:F4}"
            : v.Metrics.TryGetValue("bleu", out var bleu) ? $"validation BLEU {bleu:F2}, token accuracy {v.Metrics.GetValueOrDefault("token_accuracy"):P1}, loss {v.Loss:F4}"
            : v.Metrics.TryGetValue(VisionLanguage.VlObjective.MeanMetric, out var mean) ? $"validation mean score {mean:F2} " +
                $"({string.Join(", ", VisionLanguage.VlTasks.Names.Where(v.Metrics.ContainsKey).Select(t => $"{t} {v.Metrics[t]:F1}"))}), loss {v.Loss:F4}"
            : $"validation accuracy {v.Accuracy:P2}, loss {v.Loss:F4}";
        var line = $"{label} epoch {m.Epoch}: train loss {m.TrainLoss:F4}, {score}{(best ? " (best)" : "")}";
        if (task is not null) AnsiConsole.MarkupLine(Markup.Escape(line));
        else Console.WriteLine(line);
    }
}
