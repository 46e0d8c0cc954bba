/** aqua_lab's JupyterLab plugin: the sidebar, the Plan & deploy and Chat tabs, their commands. */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { ChatView } from './chat';
import { EvaluationsView, ReportView } from './evaluations';
import { AquaContext, COMMANDS, DEFAULT_PREFERENCES, Preferences } from './context';
import { aquaIcon } from './icon';
import { PlanView } from './plan';
import { describe, requestAPI } from './request';
import type { DataList_Deployment_ } from './schema';
import { SidebarPanel } from './sidebar';

const PLUGIN_ID = 'aqua-lab:plugin';

type View = MainAreaWidget<PlanView | ChatView | EvaluationsView>;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Plan, deploy and chat with several LLMs on one GPU shape',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ILayoutRestorer, ICommandPalette, ILauncher, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const ctx = new AquaContext((command, args) => app.commands.execute(command, args));
    void ctx.platforms().catch(() => undefined); // asked early: the sidebar's first render then needs one request
    const sidebar = new SidebarPanel(ctx);
    app.shell.add(sidebar, 'left', { rank: 850 });

    const tracker = new WidgetTracker<View>({ namespace: 'aqua-lab' });
    const open = (view: PlanView | ChatView | EvaluationsView, kind: string, args: Record<string, unknown>) => {
      const found = tracker.find(w => w.content.id === view.id);
      if (found) {
        view.dispose();
        app.shell.activateById(found.id);
        return found;
      }
      const widget = new MainAreaWidget({ content: view });
      widget.id = `${view.id}-tab`;
      widget.title.icon = aquaIcon;
      widget.title.label = view.title.label;
      view.title.changed.connect(() => {
        widget.title.label = view.title.label;
        widget.title.caption = view.title.caption;
      });
      (widget as any).aquaArgs = { kind, ...args };
      void tracker.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    };

    const platformOf = (args: Record<string, unknown>) =>
      (args.platform as string) || sidebar.currentPlatform || ctx.defaultPlatform();

    app.commands.addCommand(COMMANDS.plan, {
      label: args => (args.isPalette ? 'AQUA Lab: Plan a multi-model deployment' : 'Plan a multi-model deployment'),
      caption: 'Pick models, see how they share a shape’s GPUs, deploy them',
      icon: args => (args.isPalette ? undefined : aquaIcon),
      execute: async args => {
        const platform = await platformOf(args);
        const initial = { selected: (args.selected as string[]) ?? [], primary: (args.primary as string) ?? null };
        const widget = open(new PlanView(ctx, platform, initial), 'plan', { platform, ...initial });
        const view = widget.content as PlanView;
        view.onSelection = (selected, primary) => {
          (widget as any).aquaArgs = { kind: 'plan', platform, selected, primary };
          void tracker.save(widget);
        };
        return widget;
      }
    });
    app.commands.addCommand(COMMANDS.deployments, {
      label: 'AQUA Lab: Open deployments',
      execute: args => {
        if (!args.refresh) {
          app.shell.activateById(sidebar.id);
        }
        sidebar.refresh();
      }
    });
    app.commands.addCommand(COMMANDS.chat, {
      label: 'AQUA Lab: Chat with deployment…',
      execute: async args => {
        const platform = await platformOf(args);
        let id = args.deploymentId as string | undefined;
        if (!id) {
          let choices: string[];
          try {
            const list = await requestAPI<DataList_Deployment_>('deployments', {}, { platform });
            choices = list.data.filter(d => d.state === 'ACTIVE').map(d => `${d.display_name} — ${d.id}`);
          } catch (error) {
            await InputDialog.getText({ title: 'Cannot list deployments', text: describe(error) });
            return;
          }
          if (!choices.length) {
            await InputDialog.getText({ title: 'No active deployment', text: `Deploy on ${platform} first (Plan).` });
            return;
          }
          const picked = await InputDialog.getItem({ title: 'Chat with deployment', items: choices });
          if (!picked.button.accept || !picked.value) {
            return;
          }
          id = picked.value.split(' — ').pop()!;
        }
        const compare = !!args.compare;
        return open(new ChatView(ctx, rendermime, id, platform, compare), 'chat', { deploymentId: id, platform, compare });
      }
    });

    let reports = 0;
    const openReport = (title: string, html: string) => {
      const widget = new MainAreaWidget({ content: new ReportView(title, html) });
      widget.id = `aqua-lab-report-${++reports}`;
      widget.title.icon = aquaIcon;
      widget.title.label = title;
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
    };
    app.commands.addCommand(COMMANDS.evaluations, {
      label: args => (args.isPalette ? 'AQUA Lab: Evaluate a deployment’s models' : 'Evaluations'),
      caption: 'Score every model of a deployment on one dataset, side by side',
      execute: async args => {
        const platform = await platformOf(args);
        const deploymentId = (args.deploymentId as string) ?? null;
        const evaluationId = (args.evaluationId as string) ?? null;
        const fresh = new EvaluationsView(ctx, platform, openReport, { evaluationId, deploymentId });
        const widget = open(fresh, 'evaluations', { platform, evaluationId });
        const view = widget.content as EvaluationsView;
        if (view !== fresh && deploymentId) {
          void view.newEvaluation(deploymentId); // the open tab, on the deployment the user chose
        }
        view.onSelect = id => {
          (widget as any).aquaArgs = { kind: 'evaluations', platform, evaluationId: id };
          void tracker.save(widget);
        };
        return widget;
      }
    });

    if (palette) {
      for (const command of Object.values(COMMANDS)) {
        palette.addItem({ command, category: 'AQUA Lab', args: { isPalette: true } });
      }
    }
    if (launcher) {
      launcher.add({ command: COMMANDS.plan, category: 'Other', rank: 1 });
    }
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
      void restorer.restore(tracker, {
        command: 'aqua-lab:restore',
        args: widget => (widget as any).aquaArgs ?? {},
        name: widget => widget.content.id
      });
      app.commands.addCommand('aqua-lab:restore', {
        execute: args => {
          const command =
            args.kind === 'chat' ? COMMANDS.chat : args.kind === 'evaluations' ? COMMANDS.evaluations : COMMANDS.plan;
          return app.commands.execute(command, args as Record<string, any>);
        }
      });
    }
    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            const c = settings.composite as Record<string, any>;
            const prefs: Preferences = {
              defaultPlatform: c.defaultPlatform ?? DEFAULT_PREFERENCES.defaultPlatform,
              pollInterval: Math.max(1, c.pollInterval ?? DEFAULT_PREFERENCES.pollInterval),
              sampling: { ...DEFAULT_PREFERENCES.sampling, ...(c.sampling ?? {}) }
            };
            ctx.setPreferences(prefs);
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(error => console.warn('aqua-lab: settings not loaded, using defaults', error));
    }
  }
};

export default plugin;
